# Virtual board: the parts of `machine` that micrOS uses, recording pin, PWM and
# timer state where a test can read it (LM_sim reports them over the shell).
import time
import chip

RESET_EXIT = 75  # the host's sim supervisor restarts the node on this code
PINS = {}  # gpio -> level
PWMS = {}  # gpio -> (freq, duty_u16)
IRQS = {}  # gpio -> (handler, trigger)
FLIPS = {}  # gpio -> level changes written by the node (e.g. the heartbeat LED)
_freq = [chip.BOOT_MHZ * 1000000]
HEAP_BASE = 0  # set by simboot: heap in use before the core was imported


def reset():
    raise SystemExit(RESET_EXIT)


# the speeds the chip runs at: esp8266/modmachine.c (80, 160), esp32/modmachine.c
# (20..240 MHz, 240 not on the C3); the plain sim: MICROS_SIM_MAXMHZ=160 makes it a C3
def freq(f=None):
    if f is None:
        return _freq[0]
    import os

    top = int(os.getenv("MICROS_SIM_MAXMHZ") or 240)
    if f // 1000000 not in chip.MHZ or f > top * 1000000:
        raise ValueError("frequency must be %sMHz" % "MHz, ".join(str(m) for m in chip.MHZ if m <= top))
    _freq[0] = f


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        # the chip's pin table: esp8266/machine_pin.c pyb_pin_obj[], esp32/machine_pin.h
        if not isinstance(id, int) or id not in chip.GPIO:
            raise ValueError("invalid pin")
        if mode in (Pin.OUT, Pin.OPEN_DRAIN) and id in chip.INPUT_ONLY:
            raise ValueError("pin can only be input")  # esp32/machine_pin.c GPIO_FIRST_NON_OUTPUT
        if pull not in (-1, None) and id in chip.NO_PULL:
            raise ValueError("Pin(%d) doesn't support pull" % id)  # esp8266/machine_pin.c
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
        if self.id in chip.NO_IRQ:  # esp8266/machine_pin.c: phys_port >= 16
            raise OSError("pin does not have IRQ capabilities")
        if handler is None:
            IRQS.pop(self.id, None)
        else:
            IRQS[self.id] = (handler, trigger)

    def __call__(self, v=None):
        return self.value(v)


# RTC user memory: esp8266/machine_rtc.c keeps it in the RTC's RAM (MEM_USER_MAXLEN
# 492 bytes), esp32/machine_rtc.c in RTC_NOINIT memory (MICROPY_HW_RTC_USER_MEM_MAX
# 2048): it survives machine.reset() and deep sleep, not a power cut. Here it is
# the file MICROS_SIM_RTCMEM, which the sim supervisor removes at power-on.


class RTC:
    def memory(self, data=None):
        path = __import__("os").getenv("MICROS_SIM_RTCMEM") or "/dev/null"
        if data is None:
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError:  # power-on: empty
                return b""
        if len(data) > (492 if chip.PLATFORM == "esp8266" else 2048):
            raise ValueError("buffer too long")
        with open(path, "wb") as f:
            f.write(data)

    def datetime(self, dt=None):
        if dt is None:
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        time.set_time(time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0)))


# The rest of `machine` is imported on first use (a module __getattr__,
# py/mpconfig.h MICROPY_MODULE_GETATTR), so a node that never touches it pays no
# heap for it (on a board it is C, in flash): PWM, Timer, the rarely used calls and
# the tests' edge() in machmore.py, the devices' side (I2C, ADC, time_pulse_us,
# TouchPad) in devices.py.
def __getattr__(name):
    if name in ("PWM", "Timer", "soft_reset", "unique_id", "idle", "edge"):
        import machmore

        return getattr(machmore, name)
    if name in ("I2C", "SoftI2C", "ADC", "time_pulse_us", "TouchPad"):
        import devices

        return getattr(devices, name)
    raise AttributeError(name)
