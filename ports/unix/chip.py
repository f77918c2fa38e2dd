# Virtual board: the chip the shims impersonate (MICROS_SIM_CHIP=esp8266,
# esp32, esp32c3 or esp32s3, or chip+VARIANT for a build variant whose pins
# differ, e.g. esp32+SPIRAM; unset: the plain `sim` board, which accepts any
# GPIO 0..48 and keeps the host's clock). The rules of every chip are rows in
# chips.py, read from MicroPython v1.28.0's C sources; only the impersonated
# chip's row is kept here (a board has these in C: no heap), the plain sim
# loads no table at all.
import os

NAME = os.getenv("MICROS_SIM_CHIP") or ""
# the plain virtual board
GPIO = PWM = range(49)
INPUT_ONLY = NO_IRQ = NO_PULL = ()
MHZ, BOOT_MHZ = (80, 160, 240), 160
ONE_PWM_FREQ, RTC_KEEPS, EXIT_RESETS, TCP, SOCKETS = 0, 1, 0, 0, 0
LEDC = None  # the ESP32 family's PWM (ledc.py)
PLATFORM = "linux"
EPOCH = 0


def _set(text):
    # "0-5,9,12-16" -> {0, 1, ..., 16}
    out = set()
    for part in text.split(","):
        if part:
            a, _, b = part.partition("-")
            out.update(range(int(a), int(b or a) + 1))
    return out


def _load():
    global GPIO, INPUT_ONLY, NO_IRQ, NO_PULL, PWM, MHZ, BOOT_MHZ, ONE_PWM_FREQ, RTC_KEEPS, EXIT_RESETS, TCP, SOCKETS
    global PLATFORM, LEDC, EPOCH, NAME
    import sys
    import chips

    c = chips.ROWS.get(NAME)
    if c is None:
        raise SystemExit("MICROS_SIM_CHIP %s: not one of %s" % (NAME, ", ".join(sorted(chips.ROWS))))
    del sys.modules["chips"]  # the table goes with the module: only this row stays
    NAME = NAME.partition("+")[0]  # "esp32+SPIRAM": the esp32 with that build variant
    GPIO, INPUT_ONLY, NO_IRQ, NO_PULL = _set(c[0]), _set(c[1]), _set(c[2]), _set(c[3])
    PWM = _set(c[4]) if c[4] else GPIO - INPUT_ONLY
    MHZ = tuple(int(x) for x in c[5].split(","))
    BOOT_MHZ, ONE_PWM_FREQ, RTC_KEEPS, EXIT_RESETS, TCP, SOCKETS = c[6:12]
    LEDC = tuple(int(x) for x in c[12].split(",")) if c[12] else None
    PLATFORM = "esp8266" if NAME == "esp8266" else "esp32"
    EPOCH = 946684800  # py/mpconfig.h: MICROPY_EPOCH_IS_2000 on the ESP ports


if NAME:
    _load()
del _set, _load
if NAME:  # `socket` within the chip's lwIP limits (lwip.py installs itself as socket)
    import lwip
