# Virtual board boot from a flash image file (`invoke flash --board sim`):
#   micropython flashboot.py IMG OFFSET SIZE CODEDIR
#   micropython flashboot.py IMG OFFSET SIZE --romfs ROMFS_IMG
#   micropython flashboot.py IMG OFFSET SIZE --romfs-at FW_OFFSET
#   micropython flashboot.py IMG --ota  (an OTA partition table: idfboot.py picks the app slot,
#                                        the filesystem is its "vfs" partition)
# mounts the image's littlefs partition (OFFSET, SIZE in bytes) with
# vfs.VfsLfs2 at /flash, then boots exactly as simboot.py does with /flash as
# the node's filesystem. Block writes go to the image file, so what the node
# saves survives a reboot. --romfs-at takes the core from the ROMFS image in
# the flash image's firmware region (mounted with vfs.VfsRom at /rom; without
# mmap it is read into the heap, as simboot.py's --romfs does).
# A separate script, so the plain boot's heap use stays what it was.
import sys

from flashdev import mount


def _romfs_at(img, off):
    import vfs

    with open(img, "rb") as f:
        f.seek(off)
        head = f.read(16)
        if head[:3] != b"\xd2\xcd\x31":
            raise SystemExit("no ROMFS image in the firmware region of " + img)
        n, i = 0, 3
        while True:  # the image's length: a varuint after the 3-byte header
            b = head[i]
            n = (n << 7) | (b & 0x7F)
            i += 1
            if not b & 0x80:
                break
        buf = bytearray(n + i)
        f.seek(off)
        f.readinto(buf)
    vfs.mount(vfs.VfsRom(buf), "/rom")
    return ["/rom"]


_a = list(sys.argv)
if _a[2] == "--ota":  # the bootloader's choice (idfboot.py), the vfs partition after the table's last
    import esp32part  # stays: esp32.Partition runs on it
    import idfboot

    _p = idfboot.select(_a[1])[2]
    del sys.modules["idfboot"], idfboot
    _v = esp32part.find_first(1, None, "vfs")
    if _v is None:
        raise SystemExit("no room for a filesystem after the partition table's last partition")
    _a[2:] = [str(_v[2]), str(_v[3]), "--romfs-at", str(_p)]
    del _v, _p, esp32part
mount(_a[1], int(_a[2]), int(_a[3]), "/flash")
_code = _romfs_at(_a[1], int(_a[5])) if _a[4] == "--romfs-at" else _a[4:]
sys.argv[:] = [_a[0].replace("flashboot.py", "simboot.py"), "/flash"] + _code
del _a, _code, mount, _romfs_at
import simboot  # noqa: E402,F401 - boots the node
