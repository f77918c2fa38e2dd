"""The device's PWM Load Modules on each chip's PWM (ports/unix/ledc.py for the ESP32 family,
esp32/machine_pwm.c; the ESP8266's one-frequency PWM, esp8266/esppwm.c): light (pwm_1..3,
1 kHz), dimmer (pwm_0, 1 kHz), then servo (pwm_0, 50 Hz) once the dimmer is off. They need two
frequencies (two LEDC timers of 4) and at most four channels (the C3 has 6), and the duty each
reads back is the one the chip's resolution at that frequency keeps."""
import json

import pytest

from microsctl.firmware import boards
from microsctl.node.client import Shell
from tests.test_chip_node import CHIPS


def _kept(chip, u16, freq):
    """duty_u16 as the chip keeps it: ESP8266 1024 steps; ESP32 16 bits at 50 Hz and 1 kHz
    (80 MHz / f >= 2^16); C3/S3 13 bits (14-bit timers, one bit less at the top)."""
    if chip == "esp8266":
        return min(u16 * 1024 // 65535, 1023) * 65535 // 1024
    bits = 16 if chip == "esp32" else 13
    kept = (65536 if u16 == 65535 else u16) >> (16 - bits) << (16 - bits)  # check_duty_u16, apply_duty
    return min(kept, 65535)  # get_duty_u16: 100 % reads 65535


@pytest.mark.parametrize("chip", CHIPS)
def test_pwm_load_modules_on_the_chips_pwm(make_node, chip):
    n = make_node(board=chip)
    pins = boards.get(chip).pins
    with Shell(n.port) as sh:
        def pwm():
            return {int(k): v for k, v in json.loads(sh.cmd("sim pins >json"))["pwm"].items()}

        assert sh.cmd("light rgb 300 501 1000") == "SET rgb: R300G501B1000"
        assert sh.cmd("dimmer set_value 333") == "SET DIMMER: 333"
        got = pwm()
        for name, level in (("pwm_1", 300), ("pwm_2", 501), ("pwm_3", 1000), ("pwm_0", 333)):
            assert got[pins[name]] == [1000, _kept(chip, level * 65535 // 1000, 1000)], (name, got)
        if chip == "esp8266":  # one frequency: the servo would retune the light (LM_gpio refuses; LM_servo
            return  # is the original's and runs at 50 Hz for all: tests/test_chip_node.py covers gpio)
        assert sh.cmd("servo Servo 90") == "SET SERVO: duty 90"  # pwm_0 at 50 Hz: a second timer
        got = pwm()
        assert got[pins["pwm_0"]] == [50, _kept(chip, 90 * 64, 50)]
        assert got[pins["pwm_1"]] == [1000, _kept(chip, 300 * 65535 // 1000, 1000)]
        assert sh.cmd("servo Servo2 40") == "SET SERVO2: duty 40"  # pwm_2: from the light's timer to 50 Hz
        got = pwm()
        assert got[pins["pwm_2"]] == [50, _kept(chip, 40 * 64, 50)]
        assert got[pins["pwm_3"]] == [1000, _kept(chip, 65535, 1000)]
