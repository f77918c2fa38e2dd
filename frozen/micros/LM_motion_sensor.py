# Load Module (original micrOS): PIR motion sensor on simple_2, read by edge IRQ.
import sys
from micropython import const

_LEVEL = const(0)
_EDGES = const(1)
_st = [0, 0]  # level at the last edge, edges seen: the IRQ only stores numbers
_pin = []


def _irq(p):
    _st[_LEVEL] = p.value()
    _st[_EDGES] += 1
    m = sys.modules.get("micros.mqtt")
    if m:  # motion goes out at once, not at the telemetry period's end
        m.changed()


def _init():
    if not _pin:
        from machine import Pin
        from micros import pins

        p = Pin(pins.pin("simple_2"), Pin.IN)
        p.irq(handler=_irq, trigger=Pin.IRQ_RISING | Pin.IRQ_FALLING)
        _st[_LEVEL] = p.value()
        _pin.append(p)
    return _pin[0]


def get_PIR_state():
    """Motion now (1/0) and the edges seen since the sensor was set up."""
    _init()
    return {"state": _st[_LEVEL], "edges": _st[_EDGES]}


def state():
    """Motion as a dict (for MQTT): m 1/0, None while the sensor is not set up."""
    return {"m": _st[_LEVEL] if _pin else None}


def PIR_deinit():
    """Stop listening to the PIR pin."""
    if _pin:
        _pin.pop().irq(handler=None)
    _st[_EDGES] = 0
    return "DEINIT PIR"


def help():
    """This module's functions, as they are called."""
    return ("get_PIR_state\n" "state\n" "PIR_deinit")
