# Load Module (original micrOS): one PWM dimmer on pwm_0, value 0..1000,
# state kept through a reboot by dimmer_cache_load_n_init (micros.lmcache).
from micropython import const

_ON = const(0)
_VAL = const(1)
_st = [0, 500]  # on, value: the original's defaults
_pwm = []
_cache = [False]


def _init():
    if not _pwm:
        from machine import PWM, Pin
        from micros import pins

        _pwm.append(PWM(Pin(pins.pin("pwm_0")), freq=1000, duty_u16=0))
    return _pwm[0]


def set_value(value=None):
    """Set the level 0..1000 (0 is off); None: the cached level."""
    v = int(_st[_VAL] if value is None else value)
    if not 0 <= v <= 1000:
        raise ValueError("the dimmer value is 0..1000, not %d" % v)
    _init().duty_u16(v * 65535 // 1000)
    if v:
        _st[_VAL] = v
    _st[_ON] = 1 if v else 0
    if _cache[0]:
        from micros import lmcache

        lmcache.save("dimmer", _st)
    return "SET DIMMER: %d" % v


def toggle(state=None):
    """Off, or back on at the cached level; state forces one."""
    on = (not _st[_ON]) if state is None else bool(state)
    return set_value() if on else set_value(0)


def dimmer_cache_load_n_init(cache=None):
    """Restore the cached level at boot (cache: None = on except ESP8266)."""
    from micros import lmcache

    _cache[0] = lmcache.enabled(cache)
    old = lmcache.load("dimmer") if _cache[0] else None
    if old and len(old) == 2:
        _st[:] = old
    set_value() if _cache[0] and _st[_ON] else set_value(0)
    return "CACHE: %s" % _cache[0]


def state():
    """The dimmer as a dict (for MQTT): value, s."""
    return {"value": _st[_VAL], "s": _st[_ON]}


def help():
    """This module's functions, as they are called."""
    return ("set_value value=None\n" "toggle state=None\n" "dimmer_cache_load_n_init cache=None\n" "state")
