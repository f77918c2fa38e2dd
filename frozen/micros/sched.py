# Scheduler from config: timer callback, cron tasks, external IRQ. core imports
# it only when one of them is on (the heartbeat LED is pled.py). Each item is an
# asyncio task; a callback that raises is printed and counted, never fatal.
#
# Cron catch-up: _last is the last local second processed, _next the first
# matching second after it. Each tick fires, in order and once each, every
# matching second in (_last, now]; so a late tick or a forward clock step
# (NTP) catches up, and a backward step fires nothing until the clock is past
# _last again. A jump of more than _CAP_S either way is a new clock (first NTP
# sync, RTC set by hand), not lost time: cron restarts from the new now.
#
# External IRQ: the handler counts the edge and sets a ThreadSafeFlag (no
# allocation; an Event on the virtual board, see micros.schedup); a task waits on
# the flag, runs the callback, then sleeps the debounce time and drops the
# edges that came meanwhile. A burst is one callback; edges never queue up.
import asyncio
import time
from micropython import const
from micros import call

_TICK_MS = const(500)  # cron looks at the clock twice a second
_CAP_S = const(3600)  # clock jumps up to an hour are caught up / not refired

# Counters in one list (every container costs heap): for each item, from its
# offset, runs, fails, and a third count: timer periods skipped (callback
# overran), external edges seen, cron clock jumps beyond _CAP_S.
TIM = const(0)
EXT = const(3)
CRON = const(6)
N = [0] * 9
ARMED = 0  # bits: 1 timer, 2 cron, 4 external IRQ
TEXT = ["", ""]  # the calls armed on the timer and on the external IRQ
EGPIO = -1  # the external IRQ's GPIO
NOTES = []  # what start() refused or noticed; `sched status` shows them

_tasks = []  # compiled cron tasks
_counts = []  # runs, fails of cron task i at 2*i, 2*i+1
_last = 0  # last local second cron processed
_next = 0  # first local second after _last where a task fires
_off = 0  # gmttime in seconds
_ewd = 0  # weekday of the epoch's day 0
_firing = 0  # UTC second of the cron slot being run, else 0
# The first second of 2025 on the chip's clock: an earlier time was never set
# (the ESP ports count from 2000-01-01 at power-on, the ESP8266 restarts its RTC
# tick at every reset, NTP runs in STA mode only); cron holds until then.
_sane = 0
_flag = None
# What the IRQ handler sets, chosen in micros.schedup: asyncio.Event and
# ThreadSafeFlag live in asyncio.event, whose import costs ~600 B of heap for
# good (32-bit), so it is imported only when the external IRQ is armed. The unix
# port's poll() sweeps fd-less objects such as a ThreadSafeFlag every 1 ms, which
# slows every socket of the shell; and the virtual board's IRQs (machine.edge)
# run inside the event loop, where a plain Event is safe. None: that choice.
FLAG = None


def _run(text, cnt, at, where):
    # ';'-separated LM calls; counts runs at cnt[at], failures at cnt[at + 1]
    ok = call.run_all(text, "sched: " + where)
    cnt[at] += 1
    if not ok:
        cnt[at + 1] += 1
    return ok


# -- timer --
async def _timer(text, period):
    nxt = time.ticks_add(time.ticks_ms(), period)
    while True:
        await asyncio.sleep_ms(max(0, time.ticks_diff(nxt, time.ticks_ms())))
        _run(text, N, TIM, "timirq")
        nxt = time.ticks_add(nxt, period)
        late = time.ticks_diff(time.ticks_ms(), nxt)
        if late >= 0:  # overran: skip the missed periods, never stack them
            n = late // period + 1
            N[TIM + 2] += n
            nxt = time.ticks_add(nxt, n * period)


# -- cron --
def now():
    """Local epoch second (gmttime applied)."""
    return int(time.time()) + _off


def firing():
    """UTC epoch second of the cron slot being run now; 0 outside cron."""
    return _firing


def _earliest(t):
    from micros import cronrun

    return min(cronrun.next_at(c, t, _ewd) for c in _tasks)


def step(t):
    """Fire the first due cron second up to local second t; False if none."""
    global _last, _next, _firing
    if not _tasks:
        return False
    if t - _last > _CAP_S or _last - t > _CAP_S:
        N[CRON + 2] += 1
        print("sched: clock jumped %d s: cron goes on from now" % (t - _last))
        _last = t
        _next = _earliest(t + 1)
        return False
    if _next > t:
        if t > _last:
            _last = t
        return False
    from micros import cronrun

    s = _next
    _last = s
    _firing = s - _off
    for i, c in enumerate(_tasks):
        if cronrun.match(c, s, _ewd):
            N[CRON] += 1
            if not _run(c[8], _counts, 2 * i, "cron"):
                N[CRON + 1] += 1
    _firing = 0
    _next = _earliest(s + 1)
    return True


def catch_up():
    """Fire everything due now; the number of seconds that fired."""
    n = 0
    if time.time() < _sane:  # held: the clock was never set
        return 0
    t = now()
    while step(t):
        n += 1
    return n


async def _cron():
    while True:
        # a clock from 2000 (never set) would fire tasks at wrong times: hold; once
        # set, the jump restarts cron from the new now (see step)
        if time.time() >= _sane:
            t = now()
            while step(t):
                await asyncio.sleep_ms(0)  # the shell gets in between firings
        await asyncio.sleep_ms(_TICK_MS)


# -- external IRQ --
def _irq(pin):
    N[EXT + 2] += 1  # small ints: no allocation in the handler
    _flag.set()


async def _ext(text, prell):
    while True:
        await _flag.wait()
        _run(text, N, EXT, "extirq")
        if prell:
            await asyncio.sleep_ms(prell)
        _flag.clear()  # edges within the debounce time were bounce


def start():
    """Arm what config asks for (micros.schedup, loaded for it and dropped after); bad
    parts are reported, never raised."""
    try:
        from micros import schedup

        schedup.arm()
    except Exception as e:  # the node must come up whatever the scheduler does
        text = "failed: %s: %s" % (type(e).__name__, e)
        print("sched: " + text)
        NOTES.append(text)
    finally:
        call.unload("micros.schedup")
