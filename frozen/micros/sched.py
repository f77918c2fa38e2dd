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
# allocation; an Event on the virtual board, see _ext_start); a task waits on
# the flag, runs the callback, then sleeps the debounce time and drops the
# edges that came meanwhile. A burst is one callback; edges never queue up.
import asyncio
import sys
import time
from machine import Pin
from micropython import const
from micros import call, conf

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
# What the IRQ handler sets, chosen in _ext_start(): asyncio.Event and
# ThreadSafeFlag live in asyncio.event, whose import costs ~600 B of heap for
# good (32-bit), so it is imported only when the external IRQ is armed. The unix
# port's poll() sweeps fd-less objects such as a ThreadSafeFlag every 1 ms, which
# slows every socket of the shell; and the virtual board's IRQs (machine.edge)
# run inside the event loop, where a plain Event is safe. None: that choice.
FLAG = None


def _note(text):
    print("sched: " + text)
    NOTES.append(text)


def _run(text, cnt, at, where):
    # ';'-separated LM calls; counts runs at cnt[at], failures at cnt[at + 1]
    ok = call.run_all(text, "sched: " + where)
    cnt[at] += 1
    if not ok:
        cnt[at + 1] += 1
    return ok


def _calls(key):
    # the item's calls that resolve now; the others are reported
    good = []
    for line in conf.get(key).split(";"):
        line = line.strip()
        if not line or line == "n/a":
            continue
        try:
            call.check(line)
            good.append(line)
        except Exception as e:
            _note("%s: %r refused: %s" % (key, line, e))
    return ";".join(good)


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


def _cron_start():
    global _last, _next, _off, _ewd, _sane
    from micros import cron

    _sane = time.mktime((2025, 1, 1, 0, 0, 0, 0, 0))
    _off = conf.get("gmttime") * 3600
    _ewd = time.gmtime(0)[6]
    try:
        tasks, errors = cron.parse(conf.get("crontasks"), call.check)
    finally:  # the parser is needed once: a running cron keeps micros.cronrun only
        call.unload("micros.cron")
    for e in errors:
        _note("crontasks: %s: not armed" % e)
    if not tasks:
        _note("cron is on but has no valid crontasks")
        return
    _tasks.extend(tasks)
    _counts.extend([0] * (2 * len(tasks)))
    _last = now()  # the seconds after boot: a reboot never refires its own second
    _next = _earliest(_last + 1)
    _arm(2)
    asyncio.create_task(_cron())


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


def _arm(bit):
    global ARMED
    ARMED |= bit


def _ext_start(text):
    global _flag, EGPIO
    from micros import pins

    name = conf.get("extirqpin")
    trig = conf.get("extirqtrig")
    edge = {"up": Pin.IRQ_RISING, "down": Pin.IRQ_FALLING}.get(trig, Pin.IRQ_RISING | Pin.IRQ_FALLING)
    _flag = (FLAG or (asyncio.Event if sys.platform in ("linux", "darwin") else asyncio.ThreadSafeFlag))()
    try:
        gpio = pins.pin(name)
        p = Pin(gpio, Pin.IN, Pin.PULL_UP) if trig == "down" else Pin(gpio, Pin.IN)
        # not every pin has an interrupt (esp8266/machine_pin.c: GPIO16 raises OSError)
        p.irq(handler=_irq, trigger=edge)
    except (ValueError, OSError) as e:
        _flag = None
        _note("extirq: pin %s: %s: not armed" % (name, e))
        return
    _arm(4)
    TEXT[1] = text
    EGPIO = gpio
    asyncio.create_task(_ext(text, conf.get("extirqprell")))


def start():
    """Arm what config asks for; bad parts are reported, never raised."""
    try:
        _start()
    except Exception as e:  # the node must come up whatever the scheduler does
        _note("failed: %s: %s" % (type(e).__name__, e))


def _start():
    timirq = conf.get("timirq")
    if timirq and conf.get("timirqcbf") != "n/a":
        text = _calls("timirqcbf")
        if text:
            period = conf.get("timirqseq")
            _arm(1)
            TEXT[0] = text
            asyncio.create_task(_timer(text, period))
    if conf.get("cron"):
        if timirq:
            _cron_start()
        else:
            _note("cron is on but needs timirq True as well: cron not armed")
    if conf.get("extirq"):
        text = _calls("extirqcbf")
        if text:
            _ext_start(text)
        else:
            _note("extirq is on but has no valid extirqcbf: not armed")
