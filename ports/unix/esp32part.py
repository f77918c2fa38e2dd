# Virtual board: esp32.Partition of MicroPython v1.28.0 (ports/esp32/esp32_partition.c)
# over the sim's flash image file, with the ESP-IDF calls behind it modelled:
# the partition table at 0x8000 (esp_partition_find), ports/esp32/main.c's "vfs"
# partition from the end of the last one to the end of flash, the OTA ops of
# components/app_update/esp_ota_ops.c (esp_ota_get_next_update_partition,
# esp_ota_set_boot_partition with its image check, esp_ota_mark_app_valid_cancel_rollback)
# and the otadata records they share with the bootloader (idfboot.py): two 32-byte
# esp_ota_select_entry_t {ota_seq, seq_label[20], ota_state, crc}, one per 4 KB sector,
# crc = crc32_le(UINT32_MAX, &ota_seq, 4). Flash is NOR: a write only clears bits,
# an erase sets a 4 KB sector to 0xFF. Loaded by idfboot.py before the core (it is C
# code in ROM on a board), so it is not counted in the core's heap.
import struct
from binascii import crc32
from micropython import const

_TABLE = const(0x8000)
_SEC = const(4096)
_APP = const(0)
_DATA = const(1)
_OTA_0 = const(0x10)
_OTADATA = const(0)  # data subtype "ota"
NEW = const(0)  # esp_ota_img_states_t
PENDING_VERIFY = const(1)
VALID = const(2)
INVALID = const(3)
ABORTED = const(4)
UNDEFINED = const(0xFFFFFFFF)
IMG = None  # the flash image file (set by idfboot.py)
RUNNING = None  # the app partition the bootloader loaded
PARTS = []  # (type, subtype, address, size, label) as the table lists them, then "vfs"


def load(img):
    """Read the partition table (gen_esp32part.py binary: 32-byte entries, magic 0x50AA)."""
    global IMG
    IMG = img
    PARTS[:] = []
    end = 0
    with open(img, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(_TABLE)
        while True:
            e = f.read(32)
            if e[:2] != b"\xaa\x50":  # 0xEBEB: the MD5 row; 0xFFFF: the end
                break
            t, st, addr, n, label = struct.unpack("<BBII16s", e[2:28])
            PARTS.append((t, st, addr, n, label.rstrip(b"\0").decode()))
            end = max(end, addr + n)
    if end and size > end and not find_first(_DATA, None, "vfs"):
        PARTS.append((_DATA, 0x81, end, size - end, "vfs"))  # ports/esp32/main.c
    return PARTS


def find_first(t, st=None, label=None):
    for p in PARTS:
        if p[0] == t and (st is None or p[1] == st) and (label is None or p[4] == label):
            return p
    return None


def _ota_slots():
    return [p for p in PARTS if p[0] == _APP and _OTA_0 <= p[1] < _OTA_0 + 16]


# -- the flash ------------------------------------------------------------------

def read(addr, buf):
    with open(IMG, "rb") as f:
        f.seek(addr)
        f.readinto(buf)


def write(addr, data):
    # NOR flash: programming clears bits, it never sets one
    old = bytearray(len(data))
    read(addr, old)
    if old != b"\xff" * len(old):
        for i in range(len(old)):
            old[i] &= data[i]
        data = old
    with open(IMG, "r+b") as f:
        f.seek(addr)
        f.write(data)


def erase(addr, n):
    if addr % _SEC or n % _SEC:
        raise OSError(-0x102)  # ESP_ERR_INVALID_ARG
    ff = b"\xff" * _SEC
    with open(IMG, "r+b") as f:
        f.seek(addr)
        for _ in range(n // _SEC):
            f.write(ff)


# -- otadata (components/bootloader_support/src/bootloader_common.c) ------------------

def rec_crc(seq):
    return crc32(struct.pack("<I", seq), 0xFFFFFFFF)


def read_otadata():
    """[(seq, state, crc), (seq, state, crc)], or None without an otadata partition."""
    p = find_first(_DATA, _OTADATA)
    if p is None:
        return None
    out = []
    b = bytearray(32)
    for i in (0, 1):
        read(p[2] + i * _SEC, b)
        seq, _, state, crc = struct.unpack("<I20sII", b)
        out.append([seq, state, crc])
    return out


def write_otadata(i, seq, state):
    p = find_first(_DATA, _OTADATA)
    erase(p[2] + i * _SEC, _SEC)
    write(p[2] + i * _SEC, struct.pack("<I20sII", seq, b"\xff" * 20, state, rec_crc(seq)))


def invalid(r):  # bootloader_common_ota_select_invalid
    return r[0] == 0xFFFFFFFF or r[1] in (INVALID, ABORTED)


def active(ota):  # bootloader_common_get_active_otadata: the highest valid seq
    ok = [not invalid(r) and r[2] == rec_crc(r[0]) for r in ota]
    if ok[0] and ok[1]:
        return 0 if ota[0][0] >= ota[1][0] else 1
    return 0 if ok[0] else (1 if ok[1] else -1)


def slot_of(seq):
    s = _ota_slots()
    return s[(seq - 1) % len(s)]


def boot_partition():  # esp_ota_get_boot_partition: NULL without an otadata partition
    ota = read_otadata()
    if ota is None:
        return None
    i = active(ota)
    if i >= 0 and _ota_slots():
        return slot_of(ota[i][0])
    return find_first(_APP, 0) or find_first(_APP, _OTA_0)  # find_default_boot_partition


def image_ok(p):
    # esp_image_verify: the app image checks out. Here the app is the core as a ROMFS image
    # (header d2 cd 31, then its length as a varuint), which must fit in the slot.
    b = bytearray(8)
    read(p[2], b)
    if b[:3] != b"\xd2\xcd\x31":
        return False
    n = i = 0
    for i in range(3, 8):
        n = (n << 7) | (b[i] & 0x7F)
        if not b[i] & 0x80:
            break
    return n + i + 1 <= p[3]


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        if isinstance(id, int):
            if id == 0:
                p = boot_partition()
            elif id == 1:
                p = RUNNING
            else:
                raise ValueError
        else:
            p = find_first(_APP, None, id) or find_first(_DATA, None, id)
        if p is None:
            raise OSError(2)  # MP_ENOENT
        self.p = p
        self.bs = block_size

    @staticmethod
    def find(type=0, subtype=0xFF, label=None, block_size=4096):
        out = []
        for p in PARTS:
            if p[0] == type and subtype in (0xFF, p[1]) and label in (None, p[4]):
                out.append(Partition(p[4], block_size))
        return out

    def info(self):
        t, st, addr, n, label = self.p
        return (t, st, addr, n, label, False)

    def readblocks(self, n, buf, off=0):
        addr = n * self.bs + off
        if addr + len(buf) > self.p[3]:
            raise OSError(-0x102)  # esp_partition_read: ESP_ERR_INVALID_ARG past the end
        read(self.p[2] + addr, buf)

    def writeblocks(self, n, buf, off=None):
        addr = n * self.bs
        if off is None:  # the simple interface erases first (whole 4 KB sectors here)
            erase(self.p[2] + addr, len(buf))
        else:  # extended: the caller erased with ioctl(6)
            addr += off
        if addr + len(buf) > self.p[3]:
            raise OSError(-0x102)
        write(self.p[2] + addr, buf)

    def ioctl(self, op, arg):
        if op == 4:  # MP_BLOCKDEV_IOCTL_BLOCK_COUNT
            return self.p[3] // self.bs
        if op == 5:
            return self.bs
        if op == 6:  # erase one native block
            if self.bs != _SEC:
                return -22
            erase(self.p[2] + arg * _SEC, _SEC)
            return 0
        if op in (1, 2, 3):
            return 0
        return None

    def set_boot(self):  # esp_ota_set_boot_partition
        p = self.p
        if p[0] != _APP:
            raise OSError(-0x102)
        if not image_ok(p):
            raise OSError(-0x1503)  # ESP_ERR_OTA_VALIDATE_FAILED
        ota = read_otadata()
        if p[1] == 0:  # factory: otadata erased
            fd = find_first(_DATA, _OTADATA)
            erase(fd[2], fd[3])
            return
        slots = _ota_slots()
        n, sub = len(slots), p[1] - _OTA_0
        i = active(ota)
        if i < 0:  # esp_rewrite_ota_data: both records unused
            nxt, seq = 0, sub + 1
        else:
            seq, k = ota[i][0], 0
            while seq > (sub + 1) % n + k * n:
                k += 1
            nxt, seq = i ^ 1, (sub + 1) % n + k * n
        write_otadata(nxt, seq, NEW)  # CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE: first boot watched

    def get_next_update(self):  # esp_ota_get_next_update_partition
        slots = _ota_slots()
        if not slots:
            raise OSError(2)
        nxt = slots[0]
        for i in range(len(slots) - 1):
            if slots[i] is self.p or slots[i][2] == self.p[2]:
                nxt = slots[i + 1]
        return Partition(nxt[4])

    @classmethod
    def mark_app_valid_cancel_rollback(cls):  # esp_ota_current_ota_is_workable(true)
        ota = read_otadata()
        if ota is None:
            raise OSError(-0x105)  # ESP_ERR_NOT_FOUND
        i = active(ota)
        if i < 0 or not _ota_slots():
            raise OSError(1)  # ESP_FAIL (-1): "Running firmware is factory"
        if ota[i][1] != VALID:
            write_otadata(i, ota[i][0], VALID)
