# Load Module (original micrOS): the ESP32's own sensors. ESP32 boards only.
def _chip():
    try:
        import esp32
    except ImportError:
        raise OSError("esp32: ESP32 boards only") from None
    return esp32


def hall():
    """The hall sensor: gone from MicroPython v1.28 (ESP-IDF 5 dropped it)."""
    e = _chip()
    f = getattr(e, "hall_sensor", None)
    if f is None:  # ports/esp32/modesp32.c v1.28.0 has no hall_sensor
        raise OSError("hall: this firmware (MicroPython >= 1.20, ESP-IDF 5) has no hall sensor")
    return f()


def intemp():
    """Chip temperature in C (raw_temperature on the ESP32, mcu_temperature on C3/S3)."""
    e = _chip()
    if hasattr(e, "mcu_temperature"):
        return e.mcu_temperature()
    return round((e.raw_temperature() - 32) / 1.8, 1)  # the ESP32 reports Fahrenheit


def touchpin14():
    """Touch reading of GPIO14 (lower when touched)."""
    _chip()
    from machine import Pin, TouchPad

    return TouchPad(Pin(14)).read()


def help():
    """This module's functions, as they are called."""
    return ("hall\n" "intemp\n" "touchpin14")
