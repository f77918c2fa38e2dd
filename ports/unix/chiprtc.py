# Virtual board: the wall clock of an impersonated chip's RTC (time.py imports
# it only then; the plain sim keeps the host's clock). Device ms = delta + base,
# where base is the host's clock where the RTC keeps time across machine.reset()
# (ESP32: the IDF's RTC timer runs on), else the ms since this boot
# (esp8266/machine_rtc.c: the RTC tick restarts at 0 after a reset while the
# delta in RTC memory stays). The delta lives in MICROS_SIM_RTC, the chip's RTC
# memory: the sim removes it at power-on, so the clock starts at the epoch
# (2000-01-01 00:00:00).
import os
import time
import chip

_RTC = os.getenv("MICROS_SIM_RTC")
_delta = [None]


def _base():
    if chip.RTC_KEEPS:
        return time.time_ns() // 1000000
    return time.ticks_diff(time.ticks_ms(), time._boot)


def _set(d):
    _delta[0] = d
    if _RTC:
        with open(_RTC, "w") as f:
            f.write(str(d))


def ms():
    if _delta[0] is None:
        try:
            with open(_RTC) as f:
                _delta[0] = int(f.read())
        except (OSError, TypeError, ValueError):  # power-on: the RTC starts at the epoch
            _set(-_base())
    return _delta[0] + _base()


def set_ms(t):
    _set(t - _base())
