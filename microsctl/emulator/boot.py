"""What MicroPython v1.28.0 does at boot with what was flashed, as far as the node's filesystem goes.

    res = boot("esp8266", bytes(rom.flash.data))
    res.outcome == "mounted" and res.config()["devfid"] == ...

Given a dump of a chip's whole flash (its length is the chip's physical size):
1. the flash size the firmware believes: on the ESP8266 the image header at 0x0 (byte 3, high
   nibble: the ROM sets its flashchip from it and ports/esp8266/modesp.c esp_flash_size() returns
   that); on the ESP32 family the chip's own size (ports/esp32/main.c calls
   esp_flash_get_physical_size);
2. where the port's block device lies: ESP8266 ports/esp8266/modules/flashbdev.py from
   esp.flash_user_start() (boards/esp8266_common.ld `_firmware_size`: the end of irom0 in
   boards/esp8266_2MiB.ld); ESP32 from the end of the last partition in the partition table at
   0x8000 to the end of flash (ports/esp32/main.c);
3. the port's _boot.py and inisetup.py, run by the real MicroPython (unix port) on those bytes
   (mpboot.py): vfs.mount autodetects littlefs and mounts it with VfsLfs2, whose lfs2_mount
   refuses a superblock with another block count (lib/littlefs/lfs2.c); then inisetup formats
   an erased block 0 (settings lost) or loops on "filesystem corrupt" (settings lost, node stuck).

On the ESP32 family the bootloader's choice of app is modelled too (`Boot.app`): with an
`otadata` partition, the valid select entry (of its two sectors) with the highest ota_seq picks
ota_[(seq - 1) % slots]; none valid (erased otadata): factory, else ota_0 (ESP-IDF
bootloader_utility.c bootloader_utility_get_selected_boot_partition, bootloader_common.c
bootloader_common_ota_select_invalid; the crc as otatool.py computes it; docs/en/api-reference/
system/ota.rst "OTA Data Partition").

Independent of microsctl.flashing on purpose: the tests hold the flashing code against this.
"""
import json
import os
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from microsctl.run import micropython

# ESP8266 image header byte 3, high nibble -> flash size (the ROM's table; esptool ESP8266ROM.FLASH_SIZES)
_MB = 1024 * 1024
ESP8266_HEADER_SIZES = {0x0: _MB // 2, 0x1: _MB // 4, 0x2: _MB, 0x3: 2 * _MB, 0x4: 4 * _MB, 0x5: 2 * _MB,
                        0x6: 4 * _MB, 0x8: 8 * _MB, 0x9: 16 * _MB}
# boards/esp8266_2MiB.ld (ESP8266_GENERIC default variant): irom0 at 0x40209000, 1M - 36K long;
# esp8266_common.ld: _firmware_size = ORIGIN(irom0_0_seg) + LENGTH(irom0_0_seg) - 0x40200000
ESP8266_IROM0_ORG = 0x9000
ESP8266_IROM0_LEN = 1024 * 1024 - 36 * 1024
PARTITION_TABLE = 0x8000  # CONFIG_PARTITION_TABLE_OFFSET in ports/esp32/boards/sdkconfig.base (IDF default)
_PART_MAGIC = 0x50AA


@dataclass
class Boot:
    outcome: str  # mounted, formatted, corrupt, no-filesystem, error
    flash_size: int  # what the firmware believes
    start: int | None  # byte offset of the block device
    blocks: int | None
    files: dict = field(default_factory=dict)
    said: list = field(default_factory=list)
    app: str | None = None  # ESP32 family: the app partition the bootloader starts

    def config(self):
        """node_config.json as the node reads it after boot, or None."""
        raw = self.files.get("node_config.json")
        return json.loads(raw) if raw is not None else None


def esp8266_flash_size(flash):
    """esp.flash_size() of a firmware at 0x0: from its image header (None: the ROM does not boot it)."""
    if len(flash) < 4 or flash[0] != 0xE9:
        return None
    return ESP8266_HEADER_SIZES.get(flash[3] >> 4)


def partitions(flash, at=PARTITION_TABLE):
    """[(label, type, subtype, offset, size)] of an ESP-IDF partition table (32-byte entries,
    magic 0xAA50, ended by the MD5 entry 0xEBEB or erased flash)."""
    out = []
    for i in range(at, at + 0xC00, 32):
        magic, ptype, sub, off, size = struct.unpack_from("<HBBII", flash, i)
        if magic != _PART_MAGIC:
            break
        label = bytes(flash[i + 12 : i + 28]).split(b"\0")[0].decode("ascii", "replace")
        out.append((label, ptype, sub, off, size))
    return out


# esp_ota_select_entry_t (esp_flash_partitions.h): ota_seq, seq_label[20], ota_state, crc
OTA_SELECT = struct.Struct("<I20sII")
OTA_IMG_INVALID, OTA_IMG_ABORTED, OTA_IMG_UNDEFINED = 3, 4, 0xFFFFFFFF  # esp_ota_img_states_t


def ota_select_crc(seq):
    """The entry's crc: CRC-32 of ota_seq alone (otatool.py: binascii.crc32(pack('I', seq), 0xFFFFFFFF))."""
    return zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF)


def ota_select_entry(seq, state=OTA_IMG_UNDEFINED):
    """An otadata sector's entry as esp_ota_set_boot_partition writes it."""
    return OTA_SELECT.pack(seq, b"\xff" * 20, state, ota_select_crc(seq))


def boot_app(flash, parts):
    """Label of the app partition the bootloader starts (see the module doc), or None."""
    apps = [p for p in parts if p[1] == 0]
    ota = sorted((p for p in apps if 0x10 <= p[2] < 0x20), key=lambda p: p[2])
    otadata = next((p for p in parts if p[1] == 1 and p[2] == 0), None)
    seqs = []
    if otadata and ota:
        for at in (otadata[3], otadata[3] + 4096):
            seq, _label, state, crc = OTA_SELECT.unpack_from(flash, at)
            if seq != 0xFFFFFFFF and crc == ota_select_crc(seq) and state not in (OTA_IMG_INVALID, OTA_IMG_ABORTED):
                seqs.append(seq)
    if seqs:
        return ota[(max(seqs) - 1) % len(ota)][0]
    factory = next((p for p in apps if p[2] == 0), None)
    return factory[0] if factory else ota[0][0] if ota else None


def boot(chip, flash, irom0_length=ESP8266_IROM0_LEN):
    """Boot a flash dump (bytes: the chip's whole flash) the way the port does; see the module doc."""
    flash = bytes(flash)
    if chip == "esp8266":
        size = esp8266_flash_size(flash)
        if size is None:
            return Boot("error", 0, None, None, said=["no ESP8266 image at 0x0: the ROM does not boot"])
        where = ESP8266_IROM0_ORG + irom0_length  # esp.flash_user_start()
        port = "esp8266"
    else:
        size = len(flash)  # esp_flash_get_physical_size: the chip, not the image header
        parts = partitions(flash)
        if not parts:
            return Boot("error", size, None, None, said=["no partition table at 0x8000: the bootloader stops"])
        if any(p[0] in ("vfs", "ffat") and p[1] == 1 for p in parts):
            raise NotImplementedError("a partition table with its own vfs/ffat row")  # not in v1.28.0's tables
        where = max(off + sz for _l, _t, _s, off, sz in parts)
        port = "esp32"
        app = boot_app(flash, parts)
    fd, tmp = tempfile.mkstemp(prefix="mpboot-", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(flash)
        argv = [micropython(), str(Path(__file__).with_name("mpboot.py")), tmp, port, str(size), str(where)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(tmp)
    if out.returncode:
        raise RuntimeError(f"mpboot.py failed: {out.stderr or out.stdout}")
    res = json.loads(out.stdout)
    start = None if res["start_sec"] is None else res["start_sec"] * 4096
    return Boot(res["outcome"], size, start, res["blocks"], res.get("files", {}), res["said"],
                app if port == "esp32" else None)
