# Load Module (original micrOS): RGB light on pwm_1/pwm_2/pwm_3, levels 0..1000,
# state kept through a reboot by rgb_cache_load_n_init (micros.lmcache).
from micropython import const

_R = const(0)
_G = const(1)
_B = const(2)
_ON = const(3)
_st = [500, 500, 500, 0]  # r, g, b, on: the original's defaults
_pwm = []  # PWM of red, green, blue once used
_cache = [False]


def _init():
    if not _pwm:
        from machine import PWM, Pin
        from micros import pins

        for name in ("pwm_1", "pwm_2", "pwm_3"):
            _pwm.append(PWM(Pin(pins.pin(name)), freq=1000, duty_u16=0))
    return _pwm


def _save():
    if _cache[0]:
        from micros import lmcache

        lmcache.save("light", _st)


def rgb(r=None, g=None, b=None):
    """Set the colour, each level 0..1000; None keeps the cached level."""
    v = [int(_st[i] if x is None else x) for i, x in enumerate((r, g, b))]
    for x in v:
        if not 0 <= x <= 1000:
            raise ValueError("a colour level is 0..1000, not %d" % x)
    for p, x in zip(_init(), v):
        p.duty_u16(x * 65535 // 1000)
    if any(v):
        _st[:3] = v
        _st[_ON] = 1
    else:
        _st[_ON] = 0
    _save()
    return "SET rgb: R%dG%dB%d" % tuple(v)


def toggle(state=None):
    """Turn the light on (cached colour) or off; state forces one."""
    on = (not _st[_ON]) if state is None else bool(state)
    return rgb() if on else rgb(0, 0, 0)


def rgb_cache_load_n_init(cache=None):
    """Restore the cached colour at boot (cache: None = on except ESP8266)."""
    from micros import lmcache

    _cache[0] = lmcache.enabled(cache)
    old = lmcache.load("light") if _cache[0] else None
    if old and len(old) == 4:
        _st[:] = old
    if _cache[0] and _st[_ON]:
        rgb()
    else:
        rgb(0, 0, 0)
    return "CACHE: %s" % _cache[0]


def state():
    """The light as a dict (for MQTT): r, g, b, s."""
    return {"r": _st[_R], "g": _st[_G], "b": _st[_B], "s": _st[_ON]}


def help():
    """This module's functions, as they are called."""
    return ("rgb r=None g=None b=None\n" "toggle state=None\n" "rgb_cache_load_n_init cache=None\n" "state")
