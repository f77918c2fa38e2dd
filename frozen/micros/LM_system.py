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


def heartbeat():
    """Blink the builtin LED once."""
    from micros import pins

    try:
        led = machine.Pin(pins.pin("builtin"), machine.Pin.OUT)
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
    return {
        "version": VERSION,
        "platform": sys.platform,
        "devfid": conf.get("devfid"),
        "hwuid": conf.get("hwuid"),
        "nwmd": conf.get("nwmd"),
        "devip": conf.get("devip"),
        "uptime_s": _time.ticks_diff(_time.ticks_ms(), core.BOOT_MS) // 1000,
        "memfree": gc.mem_free(),
        "safemode": core.SAFE,
        "rssi": _rssi(),
        "auth": "on" if conf.get("auth") and conf.get("authkey") != "n/a" else "off",
        "auth_fails": a.FAILS if a else 0,  # wrong answers to the challenge since boot
        "auth_locked": a.LOCKED if a else 0,  # answers refused during a lockout
    }


# --- the original micrOS (v0.4) system functions, by its names ---


def gcollect():
    """Collect garbage, then memfree (the original's name for gccollect)."""
    gc.collect()
    return memfree()


def clock():
    """Local date and time (gmttime applied)."""
    from micros import core

    return "%d.%02d.%02d %02d:%02d:%02d" % core.localtime()[:6]


def ntp():
    """Set the clock from NTP now."""
    from micros import net

    if not net.ntp():
        raise OSError("NTP failed: is the node online?")
    return clock()


def module(unload=None):
    """The Load Modules in RAM; unload=<name> drops one."""
    import sys
    from micros import call

    if unload is not None:
        for full in ("micros.LM_%s" % unload, "LM_%s" % unload):
            call.unload(full)
        gc.collect()
    return [m.split("LM_", 1)[1] for m in sys.modules if "LM_" in m]


def cachedump():
    """The LM state caches (light, dimmer, switch, neopixel)."""
    from micros import conf

    c = conf.get("lmcache")
    return {} if c == "n/a" else dict(i.split(":", 1) for i in c.split(";") if i)


def ifmode():
    """The network mode: STA or AP."""
    from micros import conf

    return conf.get("nwmd")


def help():
    """This module's functions, as they are called."""
    return ("memfree", "gccollect", "reboot", "wifirssi", "heartbeat", "time", "info", "gcollect", "clock",
            "ntp", "module unload=None", "cachedump", "ifmode")
