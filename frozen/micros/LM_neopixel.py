# Load Module (original micrOS): a NeoPixel (WS2812) strip on pwm_3, colour
# levels 0..255, state kept through a reboot by neopixel_cache_load_n_init.
from micropython import const

_ON = const(3)
_st = [100, 100, 100, 0]  # r, g, b, on
_np = []
_cache = [False]


def _strip(n=24):
    if not _np:
        import neopixel
        from machine import Pin
        from micros import pins

        _np.append(neopixel.NeoPixel(Pin(pins.pin("pwm_3")), n))
    return _np[0]


def _levels(r, g, b):
    v = [int(_st[i] if x is None else x) for i, x in enumerate((r, g, b))]
    for x in v:
        if not 0 <= x <= 255:
            raise ValueError("a colour level is 0..255, not %d" % x)
    return v


def neopixel(r=None, g=None, b=None):
    """Every LED to one colour, 0..255 each; None keeps the cached level."""
    v = _levels(r, g, b)
    s = _strip()
    s.fill(tuple(v))
    s.write()
    if any(v):
        _st[:3] = v
        _st[_ON] = 1
    else:
        _st[_ON] = 0
    if _cache[0]:
        from micros import lmcache

        lmcache.save("neopixel", _st)
    return "SET neopixel: R%dG%dB%d" % tuple(v)


def segment(s, r=None, g=None, b=None):
    """LED number s (from 0) to one colour."""
    strip = _strip()
    s = int(s)
    if not 0 <= s < strip.n:
        raise ValueError("segment is 0..%d, not %d" % (strip.n - 1, s))
    strip[s] = tuple(_levels(r, g, b))
    strip.write()
    return "SET segment %d" % s


def toggle(state=None):
    """Off, or back on in the cached colour; state forces one."""
    on = (not _st[_ON]) if state is None else bool(state)
    return neopixel() if on else neopixel(0, 0, 0)


def neopixel_cache_load_n_init(ledcnt=24, cache=None):
    """Set up a strip of ledcnt LEDs and restore the cached colour."""
    from micros import lmcache

    _np.clear()
    _strip(int(ledcnt))
    _cache[0] = lmcache.enabled(cache)
    old = lmcache.load("neopixel") if _cache[0] else None
    if old and len(old) == 4:
        _st[:] = old
    neopixel() if _cache[0] and _st[_ON] else neopixel(0, 0, 0)
    return "CACHE: %s" % _cache[0]


def state():
    """The strip as a dict (for MQTT): r, g, b (0..255), s."""
    return {"r": _st[0], "g": _st[1], "b": _st[2], "s": _st[_ON]}


def help():
    """This module's functions, as they are called."""
    return ("neopixel r=None g=None b=None\n" "segment s r=None g=None b=None\n" "toggle state=None\n"
            "neopixel_cache_load_n_init ledcnt=24 cache=None\n" "state")
