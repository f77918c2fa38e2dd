# Virtual board: the chip the shims impersonate (MICROS_SIM_CHIP=esp8266,
# esp32, esp32c3 or esp32s3; unset: the plain `sim` board, which accepts any
# GPIO 0..48 and keeps the host's clock). Each rule is read from MicroPython
# v1.28.0's C sources; the file is named where the rule is used
# (machine.py, network.py, time.py, simboot.py) and in docs/boards.md.
import os

NAME = os.getenv("MICROS_SIM_CHIP") or ""


def _set(text):
    # "0-5,9,12-16" -> {0, 1, ..., 16}
    out = set()
    for part in text.split(","):
        if part:
            a, _, b = part.partition("-")
            out.update(range(int(a), int(b or a) + 1))
    return out


# name: (GPIOs, input-only, no IRQ, no pull, PWM pins ("" = every output pin),
#        CPU MHz choices, MHz at boot, ESP8266-style PWM (one frequency), time
#        kept across machine.reset(), soft reset on SystemExit from main.py,
#        lwIP active TCP connections)
_CHIPS = {
    # machine_pin.c pyb_pin_obj[]: 0-5, 9, 10, 12-16; GPIO16 has no IRQ and no pull;
    # esppwm.c pin_num[]: PWM on 0, 2, 4, 5, 12-15; modmachine.c: 80 or 160 MHz;
    # machine_rtc.c: the RTC tick restarts at 0 after a reset, the stored delta stays;
    # main.c ignores what main.py returns; esp-open-lwip lwipopts.h: MEMP_NUM_TCP_PCB
    # is the SDK's register value, 5 by default (espconn), MicroPython never raises it
    "esp8266": ("0-5,9,10,12-16", "", "16", "16", "0,2,4,5,12-15", "80,160", 80, 1, 0, 0, 5),
    # machine_pin.h CONFIG_IDF_TARGET_ESP32 (no SPIRAM): 0-23, 25-27, 32-39;
    # machine_pin.c GPIO_FIRST_NON_OUTPUT 34; modmachine.c: 20/40/80/160/240 MHz;
    # main.c: SystemExit from main.py -> soft_reset_exit; sdkconfig.base LWIP_MAX_ACTIVE_TCP=12
    "esp32": ("0-23,25-27,32-39", "34-39", "", "", "", "20,40,80,160,240", 160, 0, 1, 1, 12),
    # machine_pin.h ESP32C3 with USB Serial/JTAG (the generic C3 board): 0-13, 20, 21
    "esp32c3": ("0-13,20,21", "", "", "", "", "20,40,80,160", 160, 0, 1, 1, 12),
    # machine_pin.h ESP32S3 (USB CDC on, no SPIRAM, extended IO): 0-18, 21, 26, 33-48
    "esp32s3": ("0-18,21,26,33-48", "", "", "", "", "20,40,80,160,240", 160, 0, 1, 1, 12),
}
_c = _CHIPS.get(NAME)
if NAME and _c is None:
    raise SystemExit("MICROS_SIM_CHIP %s: not one of %s" % (NAME, ", ".join(sorted(_CHIPS))))
if _c:
    GPIO, INPUT_ONLY, NO_IRQ, NO_PULL = _set(_c[0]), _set(_c[1]), _set(_c[2]), _set(_c[3])
    PWM = _set(_c[4]) if _c[4] else GPIO - INPUT_ONLY
    MHZ = tuple(int(x) for x in _c[5].split(","))
    BOOT_MHZ, ONE_PWM_FREQ, RTC_KEEPS, EXIT_RESETS, TCP = _c[6:]
    PLATFORM = "esp8266" if NAME == "esp8266" else "esp32"
    EPOCH = 946684800  # py/mpconfig.h: MICROPY_EPOCH_IS_2000 on the ESP ports
else:  # the plain virtual board
    GPIO = _set("0-48")
    INPUT_ONLY = NO_IRQ = NO_PULL = set()
    PWM = GPIO
    MHZ, BOOT_MHZ = (80, 160, 240), 160
    ONE_PWM_FREQ, RTC_KEEPS, EXIT_RESETS, TCP = 0, 1, 0, 0
    PLATFORM = "linux"
    EPOCH = 0
del _c, _CHIPS
