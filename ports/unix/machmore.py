# Virtual board: PWM and Timer of `machine`, its rarely used calls and the
# tests' edge(), imported by machine's module __getattr__ on first use (a node
# without PWM or a timer IRQ never loads them). Their state stays in machine
# (PINS, PWMS, IRQS), where LM_sim and the tests read it.
import time
import chip
from machine import IRQS, PINS, PWMS, Pin, reset


def soft_reset():
    reset()


def unique_id():
    import network

    return network.WLAN(network.STA_IF).config("mac")


def idle():
    pass


def edge(gpio, level):
    """Drive a pin from outside (a test) and fire its IRQ as hardware would."""
    old = PINS.get(gpio, 0)
    PINS[gpio] = level
    h = IRQS.get(gpio)
    if h and old != level:
        if (level and h[1] & Pin.IRQ_RISING) or (not level and h[1] & Pin.IRQ_FALLING):
            h[0](Pin(gpio))


_pwm_freq = [500]  # esp8266/esppwm.c pwm_init(): one frequency, 500 Hz at start


class PWM:
    def __init__(self, pin, freq=-1, duty_u16=-1):
        self.id = pin.id
        if self.id not in chip.PWM:  # esp8266/machine_pwm.c: esppwm.c pin_num[]
            raise ValueError("PWM not supported on pin %d" % self.id)
        old = PWMS.get(self.id)
        PWMS[self.id] = old or (_pwm_freq[0] if chip.ONE_PWM_FREQ else 1000, 0)
        if freq != -1:
            self.freq(freq)
        if duty_u16 != -1:
            self.duty_u16(duty_u16)

    def freq(self, f=None):
        if f is None:
            return PWMS[self.id][0]
        if chip.ONE_PWM_FREQ:
            # esp8266/esppwm.c pwm_set_freq(): one frequency for every channel,
            # clamped to 1..PWM_FREQ_MAX (1000 Hz); machine_pwm.c passes channel 0
            f = min(max(f, 1), 1000)
            _pwm_freq[0] = f
            for g in PWMS:
                PWMS[g] = (f, PWMS[g][1])
            return
        PWMS[self.id] = (f, PWMS[self.id][1])

    def duty_u16(self, d=None):
        if d is None:
            return PWMS[self.id][1]
        if not 0 <= d <= 65535:
            raise ValueError("duty out of range")
        if chip.ONE_PWM_FREQ:
            # esp8266/machine_pwm.c: duty * 1024 / 65535, esppwm.c clamps to PWM_DEPTH
            # (1023); read back as duty * 65535 / 1024
            d = min(d * 1024 // 65535, 1023) * 65535 // 1024
        PWMS[self.id] = (PWMS[self.id][0], d)

    def deinit(self):
        PWMS.pop(self.id, None)


if chip.LEDC:  # the ESP32 family: LEDC timers and channels (esp32/machine_pwm.c)
    from ledc import PWM  # noqa: F811


class Timer:
    # esp8266/machine_timer.c and esp32/machine_timer.c: the timer's interrupt schedules the
    # callback (mp_sched_schedule), which runs in the main thread between bytecodes, whatever
    # the program is doing. Here: a task when the program runs asyncio (as micrOS does); a
    # program without an event loop (e.g. a blocking socket server) gets a thread that only
    # sleeps and schedules the callback, as the timer's interrupt does (micropython.schedule).
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        self._task = None
        if kw:
            self.init(**kw)

    def init(self, mode=PERIODIC, period=1000, callback=None, freq=None):
        import sys

        self.deinit()
        if freq:
            period = 1000 // freq
        if "asyncio" not in sys.modules:
            return self._irq(mode, period, callback)
        import asyncio

        async def run():
            nxt = time.ticks_add(time.ticks_ms(), period)
            while True:
                await asyncio.sleep_ms(max(0, time.ticks_diff(nxt, time.ticks_ms())))
                nxt = time.ticks_add(nxt, period)
                callback(self)  # as a soft IRQ would
                if mode == Timer.ONE_SHOT:
                    return

        self._task = asyncio.create_task(run())

    def _irq(self, mode, period, callback):
        import _thread
        import micropython

        on = self._task = [1]  # deinit() clears it

        def tick():
            nxt = time.ticks_add(time.ticks_ms(), period)
            while on[0]:
                time.sleep_ms(max(0, time.ticks_diff(nxt, time.ticks_ms())))
                nxt = time.ticks_add(nxt, period)
                if not on[0]:
                    return
                try:
                    micropython.schedule(callback, self)
                except RuntimeError:  # the schedule queue is full: this tick is lost, as on a board
                    pass
                if mode == Timer.ONE_SHOT:
                    return

        _thread.start_new_thread(tick, ())

    def deinit(self):
        if isinstance(self._task, list):
            self._task[0] = 0
        elif self._task:
            self._task.cancel()
        self._task = None
