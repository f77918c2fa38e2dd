# Virtual board boot: lay out sys.path and the filesystem the way a board has
# them, then run the node's main.py.
#   micropython simboot.py FSDIR CODEDIR
#   micropython flashboot.py IMG OFFSET SIZE CODEDIR|--romfs IMG  (filesystem in a flash image, see there)
#   micropython simboot.py FSDIR --romfs IMG  (core from a ROMFS image, in place of CODEDIR)
# FSDIR is the node's filesystem (its cwd); CODEDIR holds the `micros` package
# (the "frozen" part on a board).
import gc
import os
import sys

def _romfs(argv):
    # --romfs IMG: the micrOS core comes from a ROMFS image (invoke build
    # --board sim) mounted with vfs.VfsRom at /rom in place of CODEDIR, and runs
    # in place as frozen code does on a board. The unix port has no mmap, so
    # the image itself sits in the heap: it is read before HEAP_BASE is taken.
    if "--romfs" not in argv:
        return
    i = argv.index("--romfs")
    img = argv[i + 1]
    del argv[i : i + 2]
    import vfs

    buf = bytearray(os.stat(img)[6])
    with open(img, "rb") as f:
        f.readinto(buf)
    vfs.mount(vfs.VfsRom(buf), "/rom")
    argv.append("/rom")


def _boot(argv):
    _romfs(argv)
    fs, code = argv[1], argv[2]
    here = argv[0].rpartition("/")[0] or "."
    os.chdir(fs)
    # the board's own modules first: compiled (MICROS_SIM_PORTMPY), else from source
    # then, as on a board, the filesystem's lib/ (where stock-firmware images keep the core)
    sys.path[:] = [p for p in ("", os.getenv("MICROS_SIM_PORTMPY"), here, ".frozen", "lib", code) if p is not None]
    import machine

    gc.collect()
    machine.HEAP_BASE = gc.mem_alloc()  # heap in use before the core is imported
    from micros import shell

    shell.HOST = "127.0.0.1"  # the virtual board serves loopback only
    __import__("main")


try:
    _boot(sys.argv)
except KeyboardInterrupt:
    print("node stopped (Ctrl-C)")
