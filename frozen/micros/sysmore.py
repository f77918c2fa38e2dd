# The original micrOS v0.4's `system` functions that ours did not have, by its
# names: LM_system forwards them here (its module __getattr__), so they cost
# nothing until called. docs/load-modules.md lists them under `system`.
import gc

from micros.LM_system import memfree


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
