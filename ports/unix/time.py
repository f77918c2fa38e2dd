# Virtual board: the built-in time, with a wall clock that the RTC, NTP and the
# tests can set and step. Ticks stay real, so asyncio keeps real time.
import sys

_p = sys.path
sys.path = []
import time as _t

sys.path = _p
del _p

ticks_ms = _t.ticks_ms
ticks_us = _t.ticks_us
ticks_cpu = _t.ticks_cpu
ticks_add = _t.ticks_add
ticks_diff = _t.ticks_diff
sleep = _t.sleep
sleep_ms = _t.sleep_ms
sleep_us = _t.sleep_us
time_ns = _t.time_ns

import chip

# The ESP ports count from 2000-01-01 (py/mpconfig.h MICROPY_EPOCH_IS_2000); the
# unix port from 1970. EPOCH: seconds from 1970 to this chip's epoch.
EPOCH = chip.EPOCH
OFFSET = 0  # the plain sim: seconds added to the host clock (UTC)
# MICROS_SIM_CLOCK=<unix epoch>: the wall clock is held there from boot and moves
# only when set or stepped, so tests get exact cron seconds.
HELD = __import__("os").getenv("MICROS_SIM_CLOCK")
HELD = int(HELD) - EPOCH if HELD else None
_boot = _t.ticks_ms()
_rtc = None  # an impersonated chip's RTC clock (chiprtc.py); the plain sim keeps the host's
if chip.NAME:
    import chiprtc as _rtc


def time():
    if HELD is not None:
        return HELD
    if _rtc:
        return _rtc.ms() // 1000
    return _t.time() + OFFSET


def localtime(s=None):
    # a board's RTC has no time zone: local time is UTC plus micrOS's gmttime;
    # the ESP ports give 8 fields (shared/timeutils, no isdst)
    t = _t.gmtime((time() if s is None else s) + EPOCH)
    return t[:8] if chip.NAME else t


gmtime = localtime


def mktime(t):
    return _t.mktime(t) - EPOCH


def set_time(epoch):
    """Step the wall clock to epoch seconds, counted from the chip's epoch
    (what NTP or RTC.datetime do)."""
    global OFFSET, HELD
    if HELD is not None:
        HELD = int(epoch)
    elif _rtc:
        _rtc.set_ms(int(epoch) * 1000)
    else:
        OFFSET = epoch - _t.time()
