# Virtual board boot: lay out sys.path and the filesystem the way a board has
# them, then run the node's main.py.
#   micropython simboot.py FSDIR CODEDIR
#   micropython flashboot.py IMG OFFSET SIZE CODEDIR|--romfs IMG  (filesystem in a flash image, see there)
#   micropython simboot.py FSDIR --romfs IMG  (core from a ROMFS image, in place of CODEDIR)
#   micropython simboot.py FSDIR --frozen  (the core frozen into this binary: invoke build --board unix)
#   micropython -m simboot ...  (the same, this script frozen into the binary: ports/unix/manifest.py)
# FSDIR is the node's filesystem (its cwd); CODEDIR holds the `micros` package
# (the "frozen" part on a board).
import gc
import os
import sys

PORT_FROZEN = ".frozen/ports/unix"  # the stand-ins frozen into the binary (ports/unix/manifest.py)


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
    # run as a file: the stand-ins' sources sit beside it; as `-m simboot` (frozen) argv[0] is
    # the module's name and the stand-ins are frozen with it
    here = (argv[0].rpartition("/")[0] or ".") if argv[0].endswith(".py") else None
    os.chdir(fs)
    # The board's own modules first, the stand-ins for what a board has in firmware: frozen
    # into this binary (.frozen/ports/unix, where ports/unix/manifest.py puts them; a binary
    # without them has nothing there and the search goes on), else compiled
    # (MICROS_SIM_PORTMPY), else from source. Frozen wins: the binary is the board's
    # firmware, and frozen they run in place as a board's C modules do, where from .mpy
    # their bytecode would sit in the heap. They live apart from the core's .frozen, so
    # they shadow nothing of it.
    # Then the core the sim was asked to run, ahead of .frozen: a binary with micrOS
    # frozen in must not shadow it (the unix port starts with ['', '.frozen', ...]);
    # then, as on a board, the filesystem's lib/ (where stock-firmware images keep the core)
    # MICROS_SIM_BOARD: the board's own frozen module (micros_board, boards/<B>/), the board
    # the sim impersonates: also ahead of .frozen
    frozen = code == "--frozen"
    sys.path[:] = [p for p in ("", PORT_FROZEN, os.getenv("MICROS_SIM_PORTMPY"), here, None if frozen else code,
                               os.getenv("MICROS_SIM_BOARD"), ".frozen", "lib") if p is not None]
    import machine

    gc.collect()
    machine.HEAP_BASE = gc.mem_alloc()  # heap in use before the core is imported
    # A board compiles main.py before it runs a line of it (shared/runtime/pyexec.c): its
    # bytecode is in the heap before the core's import, not squeezed in after it
    main = _compile()
    before = list(sys.modules)
    try:
        from micros import shell

        # the virtual board serves one loopback address: its "LAN" address
        # (MICROS_SIM_IP, any 127.0.0.N, so many nodes share one port), else 127.0.0.1
        shell.HOST = os.getenv("MICROS_SIM_IP") or "127.0.0.1"
    except ImportError:  # no core: main.py says so and rescues
        pass
    except MemoryError:  # the core does not fit in this heap: out of reach (so it can never
        # bind beyond loopback), main.py rescues as with none. Nothing of it kept: the modules
        # it got through stay in sys.modules, where on a board main.py's own import of the
        # core fails the same way after main.py was compiled, not before
        # Whatever the failed import pulled in goes too (asyncio, the socket shim): here they
        # are .mpy bytecode in the heap, on a board frozen code and C; kept, they left the
        # rescue no 200 B block at 38k on the 64-bit sim (tests/test_harden.py)
        for m in [m for m in sys.modules if m not in before]:
            del sys.modules[m]
        gc.collect()
        print("[sim] the micrOS core does not fit in this heap")
        if code not in sys.path:  # frozen in: it cannot be kept out of reach
            raise SystemExit(1)
        sys.path.remove(code)
    if frozen and not getattr(sys.modules.get("micros"), "__path__", "").startswith(".frozen"):
        print("this MicroPython has no micrOS frozen in: build one with 'invoke build --board unix'")
        raise SystemExit(1)
    _main(main)


def _compile():
    try:
        with open("main.py") as f:
            return compile(f.read(), "main.py", "exec")
    except OSError:  # no main.py: the board boots to its REPL
        return None


def _main(main):
    import chip

    try:
        if main:
            exec(main, {"__name__": "main"})
    except SystemExit as e:
        if e.value == 75 or not chip.NAME:  # machine.reset(), or the plain sim
            raise
        if chip.EXIT_RESETS:  # esp32/main.c: SystemExit from main.py -> soft_reset_exit
            print("MPY: soft reboot")
            import machine

            machine.reset()
        # esp8266/main.c ignores what main.py returns: the REPL runs
    if chip.NAME:  # main.py has returned: the board's REPL idles; WebREPL answers if started
        w = sys.modules.get("webrepl")
        if w and w.listen_s:
            w.serve()
        print("[sim] main.py returned: only the UART REPL is left")


try:
    _boot(sys.argv)
except KeyboardInterrupt:
    print("node stopped (Ctrl-C)")
