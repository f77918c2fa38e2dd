# Load Module (original micrOS): a digital output on pwm_4, state 0/1, kept
# through a reboot by switch_cache_load_n_init (micros.lmcache).
_st = [0]
_pin = []
_cache = [False]


def _init():
    if not _pin:
        from machine import Pin
        from micros import pins

        _pin.append(Pin(pins.pin("pwm_4"), Pin.OUT))
    return _pin[0]


def set_state(state=None):
    """Set the output to 0 or 1; None: the cached state."""
    s = _st[0] if state is None else state
    if s not in (0, 1):
        raise ValueError("the switch state is 0 or 1, not %s" % s)
    _init().value(s)
    _st[0] = int(s)
    if _cache[0]:
        from micros import lmcache

        lmcache.save("switch", _st)
    return "SET STATE: %d" % s


def toggle():
    """Flip the output."""
    return set_state(1 - _st[0])


def switch_cache_load_n_init(cache=None):
    """Restore the cached state at boot (cache: None = on except ESP8266)."""
    from micros import lmcache

    _cache[0] = lmcache.enabled(cache)
    old = lmcache.load("switch") if _cache[0] else None
    if old and len(old) == 1 and old[0] in (0, 1):
        _st[0] = old[0]
    set_state() if _cache[0] else set_state(0)
    return "CACHE: %s" % _cache[0]


def state():
    """The switch as a dict (for MQTT): s."""
    return {"s": _st[0]}


def help():
    """This module's functions, as they are called."""
    return ("set_state state=None\n" "toggle\n" "switch_cache_load_n_init cache=None\n" "state")
