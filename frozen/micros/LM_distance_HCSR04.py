# Load Module (original micrOS): HC-SR04 ultrasonic distance, trigger on
# simple_0, echo on pwm_5. Sound: 0.3432 mm/us, so 2 * 2.91 us per mm.
import time

_TIMEOUT_US = 30000  # echo longer than about 5 m: nothing in range
_io = []  # trigger, echo


def _pulse():
    if not _io:
        from machine import Pin
        from micros import pins

        _io.append(Pin(pins.pin("simple_0"), Pin.OUT, value=0))
        _io.append(Pin(pins.pin("pwm_5"), Pin.IN))
    from machine import time_pulse_us

    trig, echo = _io
    trig.value(0)
    time.sleep_us(5)
    trig.value(1)
    time.sleep_us(10)  # a 10 us trigger pulse starts one measurement
    trig.value(0)
    us = time_pulse_us(echo, 1, _TIMEOUT_US)
    if us < 0:  # -1: no echo began, -2: it did not end (extmod/machine_pulse.c)
        raise OSError("Out of range")
    return us


def distance_mm():
    """Distance in mm (echo us * 100 // 582)."""
    return _pulse() * 100 // 582


def distance_cm():
    """Distance in cm, as a float."""
    return _pulse() / 2 / 29.1


def state():
    """The distance as a dict (for MQTT): mm, None when nothing is in range."""
    try:
        return {"mm": distance_mm()}
    except OSError:
        return {"mm": None}


def deinit():
    """Release the trigger and echo pins."""
    _io.clear()
    return "DEINIT HCSR04"


def help():
    """This module's functions, as they are called."""
    return ("distance_mm\n" "distance_cm\n" "state\n" "deinit")
