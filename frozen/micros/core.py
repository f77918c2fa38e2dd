# micrOS entry point: config, boot hook, network, scheduler, then the shell.
import asyncio
import sys
import time
import machine
from micros import call, conf

BOOT_MS = time.ticks_ms()
SAFE = False  # True when the core failed and only the shell runs


def localtime(t=None):
    return time.localtime((time.time() if t is None else t) + conf.get("gmttime") * 3600)


def reboot():
    machine.reset()


def drop(name):
    """Forget micros.<name> after a one-time job, so its RAM can be collected."""
    call.unload("micros." + name)


async def _main():
    from micros import shell

    if not SAFE and conf.get("pled"):
        from micros import pled

        pled.start()
    await shell.serve()
    if not SAFE and (conf.get("timirq") or conf.get("cron") or conf.get("extirq")):
        from micros import sched  # nothing is imported when scheduling is off

        sched.start()
    while True:
        await asyncio.sleep(3600)


def start():
    global SAFE
    try:
        from micros import boot

        try:
            boot.run()
        finally:
            drop("boot")
    except Exception as e:
        SAFE = True
        print("micrOS: boot failed, safe mode (shell only):")
        sys.print_exception(e)
    try:
        asyncio.run(_main())
    except Exception as e:
        sys.print_exception(e)
        _rescue()


def _rescue():
    # The shell itself failed: leave the node reachable through WebREPL, with the
    # appwd password (extmod/modwebrepl.c takes 4..9 characters; with none and no
    # webrepl_cfg.py, webrepl.start() raises TypeError). Then main.py returns to
    # the REPL: a SystemExit would soft-reset an ESP32 into the same failure.
    pw = conf.get("appwd")
    try:
        import webrepl

        webrepl.start(password=pw if 4 <= len(pw) <= 9 else None)
    except (ImportError, TypeError, ValueError, OSError) as e:
        print("micrOS: no WebREPL rescue (appwd must be 4..9 characters):", repr(e))
