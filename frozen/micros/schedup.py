# Arming the scheduler from config: the timer callback, cron, the external IRQ.
# Run once by micros.sched.start() and dropped after: what stays is the running
# part in micros.sched (its tasks, counters and the IRQ handler).
import asyncio
import sys
import time
from machine import Pin
from micropython import const
from micros import call, conf, sched

# micros.sched.ARMED's bits
_TIMER = const(1)
_CRON = const(2)
_EXT = const(4)


def _note(text):
    print("sched: " + text)
    sched.NOTES.append(text)


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


def _cron():
    from micros import cron

    s = sched
    s._sane = time.mktime((2025, 1, 1, 0, 0, 0, 0, 0))
    s._off = conf.get("gmttime") * 3600
    s._ewd = time.gmtime(0)[6]
    try:
        tasks, errors = cron.parse(conf.get("crontasks"), call.check)
    finally:  # the parser is needed once: a running cron keeps micros.cronrun only
        call.unload("micros.cron")
    for e in errors:
        _note("crontasks: %s: not armed" % e)
    if not tasks:
        _note("cron is on but has no valid crontasks")
        return
    s._tasks.extend(tasks)
    s._counts.extend([0] * (2 * len(tasks)))
    s._last = s.now()  # the seconds after boot: a reboot never refires its own second
    s._next = s._earliest(s._last + 1)
    s.ARMED |= _CRON
    asyncio.create_task(s._cron())


def _ext(text):
    from micros import pins

    s = sched
    name = conf.get("extirqpin")
    trig = conf.get("extirqtrig")
    edge = {"up": Pin.IRQ_RISING, "down": Pin.IRQ_FALLING}.get(trig, Pin.IRQ_RISING | Pin.IRQ_FALLING)
    # what the IRQ handler sets: see micros.sched FLAG
    s._flag = (s.FLAG or (asyncio.Event if sys.platform in ("linux", "darwin") else asyncio.ThreadSafeFlag))()
    try:
        gpio = pins.pin(name)
        p = Pin(gpio, Pin.IN, Pin.PULL_UP) if trig == "down" else Pin(gpio, Pin.IN)
        # not every pin has an interrupt (esp8266/machine_pin.c: GPIO16 raises OSError)
        p.irq(handler=s._irq, trigger=edge)
    except (ValueError, OSError) as e:
        s._flag = None
        _note("extirq: pin %s: %s: not armed" % (name, e))
        return
    s.ARMED |= _EXT
    s.TEXT[1] = text
    s.EGPIO = gpio
    asyncio.create_task(s._ext(text, conf.get("extirqprell")))


def arm():
    timirq = conf.get("timirq")
    if timirq and conf.get("timirqcbf") != "n/a":
        text = _calls("timirqcbf")
        if text:
            sched.ARMED |= _TIMER
            sched.TEXT[0] = text
            asyncio.create_task(sched._timer(text, conf.get("timirqseq")))
    if conf.get("cron"):
        if timirq:
            _cron()
        else:
            _note("cron is on but needs timirq True as well: cron not armed")
    if conf.get("extirq"):
        text = _calls("extirqcbf")
        if text:
            _ext(text)
        else:
            _note("extirq is on but has no valid extirqcbf: not armed")
