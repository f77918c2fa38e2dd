# Virtual board boot from a flash image file (`invoke flash --board sim`):
#   micropython flashboot.py IMG OFFSET SIZE CODEDIR
#   micropython flashboot.py IMG OFFSET SIZE --romfs ROMFS_IMG
#   micropython flashboot.py IMG OFFSET SIZE --romfs-at FW_OFFSET
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
mount(_a[1], int(_a[2]), int(_a[3]), "/flash")
_code = _romfs_at(_a[1], int(_a[5])) if _a[4] == "--romfs-at" else _a[4:]
sys.argv[:] = [_a[0].replace("flashboot.py", "simboot.py"), "/flash"] + _code
del _a, _code, mount, _romfs_at
import simboot  # noqa: E402,F401 - boots the node
