"""Firmware files shaped like the ones MicroPython v1.28.0 builds, for the emulated chips.

Made with esptool's own image classes (`esptool.bin_image`), so header, chip ID,
checksum and appended SHA-256 are what `esptool image-info` accepts:

- ESP8266: `firmware.bin` as ports/esp8266/makeimg.py lays it out: the ROM-loaded
  image (header, segments, checksum) padded to 0x9000, the total length in the 4 bytes
  before 0x9000, the irom0 part, then MD5 of everything after the first 4 bytes.
- ESP32 family: `firmware.bin` as ports/esp32/makeimg.py lays it out from the
  bootloader offset: bootloader image, the partition table at 0x8000
  (ports/esp32/partitions-4MiBplus.csv, or -4MiB-ota.csv), the app image at 0x10000.

The payload is filler that zlib packs about as well as a real firmware (to ~65 %),
with MicroPython's banner in it. Used by the tests and `invoke bench`; nothing here
is written to a board.
"""
import hashlib
import io
import random
import struct

from esptool.bin_image import ELFSection
from esptool.targets import CHIP_DEFS

PARTITION_TABLE_OFFSET = 0x8000  # ESP-IDF's default (CONFIG_PARTITION_TABLE_OFFSET)
ESP8266_SEGS_MAX = 0x9000  # SEGS_MAX_SIZE in ports/esp8266/makeimg.py
# (name, type, subtype, offset, size): type 0 app, 1 data
PARTITIONS = {
    "default": [("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
                ("factory", 0, 0, 0x10000, 0x1F0000)],
    "ota": [("nvs", 1, 2, 0x9000, 0x4000), ("otadata", 1, 0, 0xD000, 0x2000), ("phy_init", 1, 1, 0xF000, 0x1000),
            ("ota_0", 0, 0x10, 0x10000, 0x180000), ("ota_1", 0, 0x11, 0x190000, 0x180000)],
}


def filler(size, seed=1, release="1.28.0", extra=b""):
    """Code-like bytes with MicroPython's banner, and `extra` (e.g. frozen-module names) halfway."""
    rnd = random.Random(seed)
    table = bytes(rnd.choice(range(48)) for _ in range(256))
    banner = f"MicroPython v{release} on 2026-04-06; ESP module with ESP".encode()
    data = banner + rnd.randbytes(size).translate(table)
    if extra:
        data = data[: size // 2] + extra + data[size // 2 + len(extra) :]
    return data[: size & ~3]


def _image(chip, segments):
    rom = CHIP_DEFS[chip]
    img = rom.BOOTLOADER_IMAGE()
    img.entrypoint = segments[0][0]
    img.flash_mode, img.flash_size_freq = 2, 0x20  # DIO; 1MB on the ESP8266 (elf2image's default), 4MB on ESP32s
    img.segments = [ELFSection(f".seg{i}".encode(), addr, data, flags=0) for i, (addr, data) in enumerate(segments)]
    out = img.save(None)
    return out[1] if isinstance(out, tuple) else out


def partition_table(rows):
    """The binary partition table ESP-IDF's gen_esp32part.py writes: 32-byte rows, an MD5 row."""
    body = b"".join(struct.pack("<2sBBLL16sL", b"\xaa\x50", t, s, off, size, name.encode(), 0)
                    for name, t, s, off, size in rows)
    return (body + b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(body).digest()).ljust(0xC00, b"\xff")


def esp32_firmware(chip, size, seed=1, release="1.28.0", table="default", app_only=False, extra=b""):
    """firmware.bin (bootloader + partition table + app) of about `size` bytes, from the bootloader offset."""
    rom = CHIP_DEFS[chip]
    boot_at = rom.BOOTLOADER_FLASH_OFFSET
    rows = PARTITIONS[table]
    app_at = next(off for _, t, _, off, _ in rows if t == 0)
    dram = 0x3FFB0000 if chip == "esp32" else 0x3FC90000
    head = app_at - boot_at if not app_only else 0
    room = max(1024, size - head - 4096)
    app = _image(chip, [(rom.DROM_MAP_START + 0x20, filler(room, seed, release, extra)), (dram, b"\0" * 64)])
    if app_only:
        return app
    boot = _image(chip, [(dram + 0x10000, filler(20 * 1024, seed + 1, release)[:20 * 1024])])
    out = io.BytesIO()
    out.write(boot.ljust(PARTITION_TABLE_OFFSET - boot_at, b"\xff"))
    out.write(partition_table(rows).ljust(app_at - PARTITION_TABLE_OFFSET, b"\xff"))
    out.write(app)
    data = out.getvalue()
    return data + b"\xff" * max(0, size - len(data))


def esp8266_firmware(size, seed=1, release="1.28.0", extra=b""):
    """firmware.bin as ports/esp8266/makeimg.py writes it, about `size` bytes."""
    flash = _image("esp8266", [(0x40100000, filler(24 * 1024, seed + 1, release)), (0x3FFE8000, b"\0" * 1024)])
    irom = filler(max(4096, size - ESP8266_SEGS_MAX - 16), seed, release, extra)
    head = flash + b"\xff" * (ESP8266_SEGS_MAX - len(flash) - 4) + struct.pack("<I", ESP8266_SEGS_MAX + len(irom))
    body = head + irom
    return body + hashlib.md5(body[4:]).digest()


def firmware(chip, size, seed=1, release="1.28.0", **kw):
    if chip == "esp8266":
        return esp8266_firmware(size, seed, release, **kw)
    return esp32_firmware(chip, size, seed, release, **kw)
