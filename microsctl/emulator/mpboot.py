# Runs under MicroPython (unix port), not CPython: the filesystem part of a MicroPython
# v1.28.0 boot on an ESP chip, over a dump of the chip's flash (a file).
#   micropython mpboot.py DUMP esp8266 FLASH_SIZE USER_START
#   micropython mpboot.py DUMP esp32 FLASH_SIZE PART_END
# FLASH_SIZE is the size the firmware believes: esp.flash_size() on the ESP8266 (the image
# header), esp_flash_get_physical_size() on the ESP32 family. USER_START is
# esp.flash_user_start(); PART_END the end of the partition table's last partition.
# Prints one JSON object: outcome (mounted, formatted, corrupt, no-filesystem, error), the
# block device (start sector, blocks), the files the node sees and what the port printed.
# The dump is changed in place where the port would write (a reformat).
import json
import os
import sys

import vfs

_SEC = 4096


class Bdev:
    # ports/esp8266/modules/flashbdev.py FlashBdev; the ESP32's esp32.Partition
    # (ports/esp32/esp32_partition.c) has the same block protocol. The flash is NOR:
    # an erase sets 0xFF, a write can only clear bits (esp.flash_write, esp_partition_write).
    def __init__(self, f, start_sec, blocks):
        self.f = f
        self.start_sec = start_sec
        self.blocks = blocks

    def readblocks(self, n, buf, off=0):
        self.f.seek((n + self.start_sec) * _SEC + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:
            self.erase(n)
            off = 0
        at = (n + self.start_sec) * _SEC + off
        old = bytearray(len(buf))
        self.f.seek(at)
        self.f.readinto(old)
        for i in range(len(buf)):
            old[i] &= buf[i]
        self.f.seek(at)
        self.f.write(old)

    def erase(self, n):
        self.f.seek((n + self.start_sec) * _SEC)
        self.f.write(b"\xff" * _SEC)

    def ioctl(self, op, arg):
        if op == 4:  # MP_BLOCKDEV_IOCTL_BLOCK_COUNT
            return self.blocks
        if op == 5:  # MP_BLOCKDEV_IOCTL_BLOCK_SIZE
            return _SEC
        if op == 6:  # MP_BLOCKDEV_IOCTL_BLOCK_ERASE
            self.erase(arg)
            return 0


def esp8266_bdev(f, size, user_start):
    # ports/esp8266/modules/flashbdev.py, module level
    if size < 1024 * 1024:
        return None
    start_sec = user_start // _SEC
    if start_sec < 256:
        start_sec += 1  # Reserve space for native code
    # 20K at the flash end is reserved for SDK params storage
    return Bdev(f, start_sec, (size - 20480) // _SEC - start_sec)


def esp32_bdev(f, size, part_end):
    # ports/esp32/main.c boardctrl_startup: a "vfs" partition from the end of the last
    # partition to the end of flash; ports/esp32/modules/flashbdev.py finds it by label
    if part_end > 0 and size > part_end:
        return Bdev(f, part_end // _SEC, (size - part_end) // _SEC)
    return None


def setup(bdev, said):
    # ports/esp8266/modules/inisetup.py and ports/esp32/modules/inisetup.py, setup():
    # check_bootsec() formats only an erased block 0; otherwise fs_corrupted() loops forever
    buf = bytearray(_SEC)
    bdev.readblocks(0, buf)
    for b in buf:
        if b != 0xFF:
            said.append("The filesystem ... looks corrupt (inisetup.fs_corrupted, repeated forever)")
            return "corrupt"
    said.append("Performing initial setup")
    vfs.VfsLfs2.mkfs(bdev)
    vfs.mount(vfs.VfsLfs2(bdev), "/flash")
    with open("/flash/boot.py", "w") as f:
        f.write("# This file is executed on every boot (including wake-boot from deepsleep)\n")
    return "formatted"


def files(d, out):
    for name, kind, *_ in os.ilistdir(d):
        p = d + "/" + name
        if kind == 0x4000:
            files(p, out)
        else:
            with open(p, "rb") as f:
                data = f.read()
            try:
                out[p[7:]] = data.decode()
            except UnicodeError:
                out[p[7:]] = "hex:" + data.hex()
    return out


def main(argv):
    port, size, where = argv[2], int(argv[3]), int(argv[4])
    f = open(argv[1], "r+b")
    bdev = esp8266_bdev(f, size, where) if port == "esp8266" else esp32_bdev(f, size, where)
    res = {"outcome": "no-filesystem", "start_sec": None, "blocks": None, "said": []}
    if bdev:
        res["start_sec"], res["blocks"] = bdev.start_sec, bdev.blocks
        # ports/<port>/modules/_boot.py: mount "/" (here /flash: "/" is the host's), the block
        # device's filesystem autodetected (extmod/vfs.c mp_vfs_autodetect); on failure inisetup
        try:
            vfs.mount(bdev, "/flash")
            res["outcome"] = "mounted"
        except Exception as e:  # esp8266 _boot.py: bare except; esp32 _boot.py: OSError
            if port != "esp8266" and not isinstance(e, OSError):
                raise
            res["said"].append("mount: " + repr(e))
            try:
                res["outcome"] = setup(bdev, res["said"])
            except Exception as e2:  # the port's _boot.py stops here with a traceback
                res["outcome"] = "error"
                res["said"].append("inisetup: " + repr(e2))
        if res["outcome"] in ("mounted", "formatted"):
            res["files"] = files("/flash", {})
            vfs.umount("/flash")
    f.close()
    print(json.dumps(res))


main(sys.argv)
