# micrOS entry point: config, boot hook, network, scheduler, then the shell.
import asyncio
import sys
import time
import machine
from micropython import const
from micros import call, conf

BOOT_MS = time.ticks_ms()
UP_S = 0  # whole seconds up, folded in by uptime()
_mark = BOOT_MS  # the ticks_ms up to which UP_S counts
# The boot-loop guard counts the boots that did not last _UPTIME_S in the RTC's
# user memory, machine.RTC().memory(): esp8266/machine_rtc.c keeps it in the
# RTC's RAM, esp32/machine_rtc.c in RTC_NOINIT memory. It survives
# machine.reset(), a watchdog or a crash, is blank after a power cut, and
# writing it wears no flash. micrOS owns that memory: a Load Module must not
# use RTC().memory() itself. A crash or the watchdog resets with the count
# standing; reboot() clears it first (both ports write the memory at once:
# system_rtc_mem_write, a memcpy into RTC_NOINIT, before system_restart/esp_restart).
_LOOPS = const(3)  # boots in a row that ended within _UPTIME_S: the next is safe mode
_UPTIME_S = const(30)
SAFE = False  # safe mode: no boot hook, scheduler or user Load Modules (micros.guard)
WHY = ""  # why safe mode, or what the boot worked around (system info, shell)
NET = ""  # STA or AP, as the boot brought the network up


def localtime(t=None):
    return time.localtime((time.time() if t is None else t) + conf.get("gmttime") * 3600)


def uptime():
    """Seconds since boot, right past the ticks wrap."""
    # ticks_ms wraps at MICROPY_PY_TIME_TICKS_PERIOD (2**30 ms on the boards,
    # extmod/modtime.c) and ticks_diff is right up to half that, 6.2 days: fold
    # the whole seconds into UP_S here; _main calls this every hour
    global UP_S, _mark
    s = time.ticks_diff(time.ticks_ms(), _mark) // 1000
    UP_S += s
    _mark = time.ticks_add(_mark, s * 1000)
    return UP_S


def reboot():
    # a restart asked for once the boot ran through (a client's reboot, an OTA commit or
    # firmware switch) is no boot loop: the next boot counts from 0. One asked for while
    # micros.boot runs (the boot hook) counts as the boot's own failure.
    if "micros.boot" not in sys.modules:
        _count(0)
    machine.reset()


def drop(name):
    """Forget micros.<name> after a one-time job, so its RAM can be collected."""
    call.unload("micros." + name)


async def _main():
    await _up()  # its frame (all the boot's names) is freed once it ran: this one stays small
    await asyncio.sleep_ms(max(0, _UPTIME_S * 1000 - time.ticks_diff(time.ticks_ms(), BOOT_MS)))
    _count(0)  # a clean uptime ends a boot loop
    while True:
        await asyncio.sleep(3600)
        uptime()


async def _up():
    # the shell, the first-boot check after a firmware update, MQTT, the scheduler, the network watch
    from micros import shell

    if not SAFE and conf.get("pled"):
        from micros import pled

        pled.start()
    try:
        await shell.serve()
    except OSError as e:  # socport is taken: the default port, else safe mode
        from micros import guard

        drop("guard")
        await guard.fallback(shell, e)
    try:
        open(".fwota").close()  # the first boot after a firmware update (micros.fwota)
    except OSError:
        pass
    else:
        from micros import fwota

        # healthy: the boot ran through (a boot-loop safe mode is not the new firmware's fault)
        fwota.settle(WHY[:11] != "boot failed")
        drop("fwota")
    if not SAFE and conf.get("mqtt"):
        from micros import mqtt  # nothing is imported when MQTT is off

        mqtt.start()
    if not SAFE and (conf.get("timirq") or conf.get("cron") or conf.get("extirq")):
        from micros import sched  # nothing is imported when scheduling is off

        sched.start()
    if NET and conf.get("staessid") not in ("", "your_wifi_name"):
        _watch()


def _watch():
    from micros import netwatch  # back to STA when it appears or returns

    netwatch.start(NET)


def _count(n):
    # the boot-loop count in the RTC memory, b"mG" + count; n < 0 reads it
    try:
        rtc = machine.RTC()
        if n >= 0:
            rtc.memory(b"mG" + bytes((min(n, 255),)))
            return n
        m = rtc.memory()
        return m[2] if len(m) == 3 and m[:2] == b"mG" else 0
    except AttributeError:  # no RTC user memory in this build: no guard
        return 0


def start():
    global SAFE, WHY
    n = _count(-1)
    _count(n + 1)  # this boot, until it lasts _UPTIME_S
    try:
        if n >= _LOOPS:
            from micros import guard

            drop("guard")
            guard.safe("boot loop: %d resets within %d s of boot (cleared after %d s up)" % (n, _UPTIME_S, _UPTIME_S))
        from micros import boot

        try:
            boot.run()
        finally:
            drop("boot")
    except Exception as e:
        SAFE = True
        call.USER = False
        WHY = "boot failed: %s" % e
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
