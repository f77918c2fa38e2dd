# Virtual board: the parts of `machine` that micrOS uses, recording pin, PWM and
# timer state where a test can read it (LM_sim reports them over the shell).
import sys
import time

RESET_EXIT = 75  # the host's sim supervisor restarts the node on this code
PINS = {}  # gpio -> level
PWMS = {}  # gpio -> (freq, duty_u16)
IRQS = {}  # gpio -> (handler, trigger)
FLIPS = {}  # gpio -> level changes written by the node (e.g. the heartbeat LED)
_freq = [160000000]
HEAP_BASE = 0  # set by simboot: heap in use before the core was imported


def reset():
    sys.exit(RESET_EXIT)


def soft_reset():
    reset()


# the speeds the virtual chip runs at (an ESP32); MICROS_SIM_MAXMHZ=160 makes it a C3
def freq(f=None):
    if f is None:
        return _freq[0]
    import os

    top = int(os.getenv("MICROS_SIM_MAXMHZ") or 240)
    if f not in (80000000, 160000000, 240000000) or f > top * 1000000:
        raise ValueError("frequency must be 80MHz, 160MHz or 240MHz")
    _freq[0] = f


def unique_id():
    import network

    return network.WLAN(network.STA_IF).config("mac")


def idle():
    pass


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if not isinstance(id, int) or not 0 <= id <= 48:
            raise ValueError("invalid pin %r" % (id,))
        self.id = id
        self.mode = mode
        if value is not None:
            PINS[id] = 1 if value else 0
        else:
            PINS.setdefault(id, 1 if pull == Pin.PULL_UP else 0)

    def value(self, v=None):
        if v is None:
            return PINS.get(self.id, 0)
        v = 1 if v else 0
        if PINS.get(self.id, 0) != v:
            FLIPS[self.id] = FLIPS.get(self.id, 0) + 1
        PINS[self.id] = v

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3):
        if handler is None:
            IRQS.pop(self.id, None)
        else:
            IRQS[self.id] = (handler, trigger)

    def __call__(self, v=None):
        return self.value(v)


def edge(gpio, level):
    """Drive a pin from outside (a test) and fire its IRQ as hardware would."""
    old = PINS.get(gpio, 0)
    PINS[gpio] = level
    h = IRQS.get(gpio)
    if h and old != level:
        if (level and h[1] & Pin.IRQ_RISING) or (not level and h[1] & Pin.IRQ_FALLING):
            h[0](Pin(gpio))


class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0):
        self.id = pin.id
        PWMS[self.id] = (freq, duty_u16)

    def freq(self, f=None):
        if f is None:
            return PWMS[self.id][0]
        PWMS[self.id] = (f, PWMS[self.id][1])

    def duty_u16(self, d=None):
        if d is None:
            return PWMS[self.id][1]
        if not 0 <= d <= 65535:
            raise ValueError("duty out of range")
        PWMS[self.id] = (PWMS[self.id][0], d)

    def deinit(self):
        PWMS.pop(self.id, None)


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        self._task = None
        if kw:
            self.init(**kw)

    def init(self, mode=PERIODIC, period=1000, callback=None, freq=None):
        import asyncio

        self.deinit()
        if freq:
            period = 1000 // freq

        async def run():
            nxt = time.ticks_add(time.ticks_ms(), period)
            while True:
                await asyncio.sleep_ms(max(0, time.ticks_diff(nxt, time.ticks_ms())))
                nxt = time.ticks_add(nxt, period)
                callback(self)  # as a soft IRQ would
                if mode == Timer.ONE_SHOT:
                    return

        self._task = asyncio.create_task(run())

    def deinit(self):
        if self._task:
            self._task.cancel()
            self._task = None


class RTC:
    def datetime(self, dt=None):
        if dt is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        time.set_time(time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0)))


class I2C:
    def __init__(self, id=0, scl=None, sda=None, freq=400000):
        self.freq = freq

    def scan(self):
        return []


class ADC:
    VALUE = 512

    def __init__(self, pin, *a, **kw):
        self.id = pin if isinstance(pin, int) else pin.id

    def read(self):
        return ADC.VALUE

    def read_u16(self):
        return ADC.VALUE * 64
