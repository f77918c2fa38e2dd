"""The virtual board with the ESP32 OTA layout: MicroPython v1.28.0's
ports/esp32/partitions-4MiB-ota.csv (the ESP32_GENERIC `OTA` variant) in a flash image file.

    0x8000   partition table (gen_esp32part.py binary: 32-byte rows, magic 0x50AA, an MD5 row)
    0xd000   otadata: two 32-byte esp_ota_select_entry_t records, one per 4 KB sector
    0x10000  ota_0 (1.5 MB): an app, here the core as a ROMFS image
    0x190000 ota_1 (1.5 MB)
    0x310000 vfs, to the end of flash (ports/esp32/main.c adds it after the last partition)

The node boots it through ports/unix/flashboot.py --ota: ports/unix/idfboot.py picks the slot
from otadata as ESP-IDF's bootloader does, and ports/unix/esp32part.py is esp32.Partition.
"""
import hashlib
import struct
import sys
import zlib
from dataclasses import replace
from pathlib import Path

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.flashing import flash, fsimage, imagemeta

TABLE = 0x8000
SECTOR = 4096
ROMFS_MAGIC = b"\xd2\xcd\x31"
# name, type, subtype, offset, size (ports/esp32/partitions-4MiB-ota.csv)
LAYOUT = (
    ("nvs", 1, 0x02, 0x9000, 0x4000),
    ("otadata", 1, 0x00, 0xD000, 0x2000),
    ("phy_init", 1, 0x01, 0xF000, 0x1000),
    ("ota_0", 0, 0x10, 0x10000, 0x180000),
    ("ota_1", 0, 0x11, 0x190000, 0x180000),
)
SLOTS = {row[0]: row for row in LAYOUT if row[1] == 0}
OTADATA = LAYOUT[1][3]
VFS = max(r[3] + r[4] for r in LAYOUT)
STATES = {0: "NEW", 1: "PENDING_VERIFY", 2: "VALID", 3: "INVALID", 4: "ABORTED", 0xFFFFFFFF: "UNDEFINED"}


def partition_table(rows=LAYOUT):
    out = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", t, st, off, size, name.encode(), 0)
                   for name, t, st, off, size in rows)
    out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (0xC00 - len(out))


def board(flash_bytes=None):
    """The sim board as this layout sees it: its filesystem is the vfs partition."""
    b = boards.get("sim")
    size = (flash_bytes or b.flash_bytes) - VFS
    return replace(b, filesystem=replace(b.filesystem, offset=VFS, size=size - size % b.filesystem.block_size))


ROMFS_ROOM_KIB = 128  # heap for the core's ROMFS image in the sim (about 55 KB today), beside --heap


def heap_kib(heap):
    """--heap ("128k", "1m", bytes) plus the room the ROMFS core takes in the sim's heap, in KiB."""
    t = str(heap).strip().lower()
    n = int(t[:-1]) * (1024 if t.endswith("m") else 1) if t[-1:] in ("k", "m") else int(t) // 1024
    return n + ROMFS_ROOM_KIB


def is_ota(path):
    """Whether the flash image file at path has this partition table."""
    try:
        with open(path, "rb") as f:
            f.seek(TABLE)
            return f.read(len(partition_table())) == partition_table()
    except OSError:
        return False


def check_core(data, what="the firmware"):
    """The sim's app image: a ROMFS image of the core that fits a slot."""
    if data[:3] != ROMFS_MAGIC:
        raise MicrosError(f"{what} is not a ROMFS image of the core: build it with 'invoke build --board sim'")
    if len(data) > LAYOUT[3][4]:
        raise MicrosError(f"{what} ({len(data)} B) does not fit an app slot ({LAYOUT[3][4]} B)")
    return data


def write_image(path, core, profile="default", sets=None):
    """A new flash image: the table, unused otadata, `core` (ROMFS bytes) in ota_0, the
    profile's filesystem in vfs. Whole file or nothing."""
    core = check_core(Path(core).read_bytes() if isinstance(core, (str, Path)) else core)
    b = board()
    img, cfg = flash.node_image(b, profile, sets)
    data = bytearray(b"\xff" * b.flash_bytes)
    table = partition_table()
    data[TABLE : TABLE + len(table)] = table
    slot = SLOTS["ota_0"][3]
    data[slot : slot + len(core)] = core
    data[VFS : VFS + len(img)] = img
    fsimage.write_atomic(path, bytes(data))
    imagemeta.record(path, profile, "sim OTA layout")
    return cfg


def otadata(path):
    """The two otadata records: [(seq, state name, crc ok)]."""
    raw = Path(path).read_bytes()
    out = []
    for i in (0, 1):
        seq, _, state, crc = struct.unpack_from("<I20sII", raw, OTADATA + i * SECTOR)
        out.append((seq, STATES.get(state, hex(state)), crc == zlib.crc32(struct.pack("<I", seq), 0xFFFFFFFF)))
    return out


def slot_image(path, slot):
    """The ROMFS image in app slot `slot` (bytes up to its own length), or b"" if none."""
    _, _, _, off, size = SLOTS[slot]
    with open(path, "rb") as f:
        f.seek(off)
        head = f.read(8)
        if head[:3] != ROMFS_MAGIC:
            return b""
        n = i = 0
        for i in range(3, 8):
            n = (n << 7) | (head[i] & 0x7F)
            if not head[i] & 0x80:
                break
        f.seek(off)
        return f.read(n + i + 1)


def prepare(path, name, profile="default", sets=None, fresh=False):
    """`invoke sim --ota`: the node's OTA-layout image (default build/sim/<name>-ota.img), made with
    this tree's core (invoke build --board sim) in ota_0 when missing or `fresh`. Returns its path."""
    from microsctl import BUILD
    from microsctl.firmware import build

    path = Path(path) if path else BUILD / "sim" / f"{name}-ota.img"
    if path.exists() and not fresh:
        if not is_ota(path):
            raise MicrosError(f"{path} has not the OTA layout: give another --flash, or --fresh to lay it out anew")
        return path
    core = build.build_sim(boards.get("sim"))
    write_image(path, core, profile, sets)
    print(f"[sim] {path}: the ESP32 OTA layout, the core in ota_0", file=sys.stderr)
    return path
