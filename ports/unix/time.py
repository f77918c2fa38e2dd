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
mktime = _t.mktime
time_ns = _t.time_ns

OFFSET = 0  # seconds added to the host clock (UTC)
# MICROS_SIM_CLOCK=<epoch>: the wall clock is held there from boot and moves
# only when set or stepped, so tests get exact cron seconds.
HELD = __import__("os").getenv("MICROS_SIM_CLOCK")
HELD = int(HELD) if HELD else None


def time():
    if HELD is not None:
        return HELD
    return _t.time() + OFFSET


def localtime(s=None):
    # a board's RTC has no time zone: local time is UTC plus micrOS's gmttime
    return _t.gmtime(time() if s is None else s)


gmtime = localtime


def set_time(epoch):
    """Step the wall clock to epoch seconds (what NTP or RTC.datetime do)."""
    global OFFSET, HELD
    if HELD is not None:
        HELD = int(epoch)
        return
    OFFSET = epoch - _t.time()
