# Block device over a region of a flash image file, for vfs.VfsLfs2 on the
# unix port: the virtual board's filesystem partition, and the tests' proof
# that a host-built image mounts in the real MicroPython. Writes go to the
# file at once, so what the node saves survives a reboot.
#   micropython flashdev.py IMG OFFSET SIZE [BLOCK READ PROG LOOKAHEAD]
# mounts the region read-only and prints its files as JSON (for tests).
import vfs

_FF = b"\xff" * 256


class FlashDev:
    def __init__(self, path, offset, size, block=4096, readonly=False):
        self.f = open(path, "rb" if readonly else "r+b")
        self.base = offset
        self.bs = block
        self.n = size // block

    def readblocks(self, n, buf, off=0):
        self.f.seek(self.base + n * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:  # simple interface: whole blocks, erased first
            off = 0
        self.f.seek(self.base + n * self.bs + off)
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.n
        if op == 5:  # block size
            return self.bs
        if op == 6:  # erase a block: NOR flash reads 0xFF after an erase
            self.f.seek(self.base + arg * self.bs)
            for _ in range(self.bs // len(_FF)):
                self.f.write(_FF)
            self.f.flush()
        elif op == 3:  # sync
            self.f.flush()
        return 0


def mount(path, offset, size, where, block=4096, read=32, prog=32, lookahead=32, readonly=False):
    dev = FlashDev(path, offset, size, block, readonly)
    fs = vfs.VfsLfs2(dev, readsize=read, progsize=prog, lookahead=lookahead)
    vfs.mount(fs, where, readonly=readonly)
    return fs


def _dump(argv):
    import json
    import os

    nums = [int(a, 0) for a in argv[2:]]
    mount(argv[1], *nums[:2], "/flash", *nums[2:], readonly=True)
    out = {}

    def walk(d):
        for name, kind, *_ in os.ilistdir(d):
            p = d + "/" + name
            if kind == 0x4000:
                walk(p)
            else:
                with open(p, "rb") as f:
                    data = f.read()
                try:
                    out[p[len("/flash/"):]] = data.decode()
                except UnicodeError:  # binary (.mpy): as hex
                    out[p[len("/flash/"):]] = "hex:" + data.hex()

    walk("/flash")
    print(json.dumps(out))


if __name__ == "__main__":
    import sys

    _dump(sys.argv)
