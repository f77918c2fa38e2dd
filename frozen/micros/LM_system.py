# Load Module: system state and housekeeping.
import gc
import machine
import time as _time


def memfree():
    """CPU frequency and free heap (no collection first)."""
    # as the original: what the GC has free now, without collecting (gccollect does)
    return "CPU[Hz]: %d\nGC MemFree[byte]: %d" % (machine.freq(), gc.mem_free())


def gccollect():
    """Collect garbage, then memfree."""
    gc.collect()
    return memfree()


def reboot():
    """Restart the node."""
    from micros import core

    core.reboot()


def wifirssi():
    """WiFi signal strength of the STA connection."""
    import network

    sta = network.WLAN(network.STA_IF)
    if not sta.isconnected():
        return "no STA connection"
    return "RSSI[dBm]: %d" % sta.status("rssi")


_LED = None  # the builtin LED's GPIO once heartbeat looked it up, -1: none (pinmap takes a reboot)


def heartbeat():
    """Blink the builtin LED once."""
    # the heartbeat profile's timer callback, every few seconds: the pin is looked up
    # once, and micros.pins is not kept loaded for it
    global _LED
    if _LED is None:
        import sys

        had = "micros.pins" in sys.modules
        from micros import pins

        try:
            _LED = pins.pin("builtin")
        except ValueError:
            _LED = -1
        finally:
            if not had:
                from micros import core

                core.drop("pins")
    try:
        if _LED < 0:
            raise ValueError("no builtin pin")
        led = machine.Pin(_LED, machine.Pin.OUT)
    except ValueError:
        return "<3 heartbeat <3 (no builtin LED)"
    v = led.value()
    led.value(not v)
    _time.sleep_ms(20)
    led.value(v)
    return "<3 heartbeat <3"


def time():
    """Local date and time, and whether the clock was set."""
    from micros import core

    t = core.localtime()
    out = "%d-%02d-%02d %02d:%02d:%02d" % t[:6]
    if t[0] < 2025:  # never set (the ESP ports start at 2000; sched holds cron the same way)
        out += " (clock not set: cron is held until NTP or the RTC sets it)"
    return out


def _rssi():
    try:
        import network
    except (ImportError, OSError):  # no radio driver, or it failed (the node is in safe mode)
        return None
    sta = network.WLAN(network.STA_IF)
    return sta.status("rssi") if sta.isconnected() else None


def info():
    """The node's facts: version, platform, names, network, uptime, heap."""
    # everything `invoke status` shows, in one call: `system info >json` is one JSON object
    from micros import VERSION, conf, core
    import sys

    a = sys.modules.get("micros.auth")  # loaded by the shell only when auth is on
    gc.collect()
    out = {
        "version": VERSION,
        "platform": sys.platform,
        "devfid": conf.get("devfid"),
        "hwuid": conf.get("hwuid"),
        "nwmd": conf.get("nwmd"),
        "devip": conf.get("devip"),
        "uptime_s": core.uptime(),
        "memfree": gc.mem_free(),
        "safemode": core.SAFE,
        "rssi": _rssi(),
        "auth": "on" if conf.get("auth") and conf.get("authkey") != "n/a" else "off",
        "auth_fails": a.FAILS if a else 0,  # wrong answers to the challenge since boot
        "auth_locked": a.LOCKED if a else 0,  # answers refused during a lockout
    }
    if core.WHY:  # why safe mode, or what the boot worked around
        out["why"] = core.WHY
    w = sys.modules.get("micros.netwatch")
    if w:  # the network watch: STA up, or looking for it
        out["net"] = w.state()
    return out


def __getattr__(name):
    # the original micrOS v0.4's system functions live in micros.sysmore, imported
    # on their first call: this module, loaded by every `system` call, stays small
    if name not in "gcollect clock ntp module cachedump ifmode".split():
        raise AttributeError(name)
    from micros import sysmore

    return getattr(sysmore, name)


def help():
    """This module's functions, as they are called."""
    return ("memfree\n" "gccollect\n" "reboot\n" "wifirssi\n" "heartbeat\n" "time\n" "info\n" "gcollect\n"
            "clock\n" "ntp\n" "module unload=None\n" "cachedump\n" "ifmode")
