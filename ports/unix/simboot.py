# Virtual board boot: lay out sys.path and the filesystem the way a board has
# them, then run the node's main.py.
#   micropython simboot.py FSDIR CODEDIR
# FSDIR is the node's filesystem (its cwd); CODEDIR holds the `micros` package
# (the "frozen" part on a board).
import gc
import os
import sys

def _boot(argv):
    fs, code = argv[1], argv[2]
    here = argv[0].rpartition("/")[0] or "."
    os.chdir(fs)
    sys.path[:] = ["", here, ".frozen", code]
    import machine

    gc.collect()
    machine.HEAP_BASE = gc.mem_alloc()  # heap in use before the core is imported
    from micros import shell

    shell.HOST = "127.0.0.1"  # the virtual board serves loopback only
    __import__("main")


_boot(sys.argv)
