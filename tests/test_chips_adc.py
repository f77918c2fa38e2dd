"""LM_adc on each chip's ADC (ports/unix/devices.py ADC: esp8266/machine_adc.c ADC(0) by number,
esp32/machine_adc.c madc_obj[] by Pin): it reads the board's adc_0, and on a pin without an ADC
it says so instead of the port's bare "invalid pin" or a TypeError."""
import json

import pytest

from microsctl.node.client import Shell
from tests.test_chip_node import CHIPS

NO_ADC = {"esp8266": 5, "esp32": 21, "esp32c3": 6, "esp32s3": 21}  # GPIOs that exist, without ADC


@pytest.mark.parametrize("chip", CHIPS)
def test_lm_adc_reads_the_boards_adc_pin(make_node, chip):
    n = make_node(board=chip)
    with Shell(n.port) as sh:
        sh.cmd("sim adc adc_0 40000")
        # ESP8266: 10 bits, 40000 * 1024 // 65535 = 625; ESP32 family: 12 bits, raw 2500 -> read_u16 40009
        raw = 624 if chip == "esp8266" else 625
        assert json.loads(sh.cmd("adc measure >json")) == {"raw": raw, "percent": raw * 100 // 1023}


@pytest.mark.parametrize("chip", CHIPS)
def test_lm_adc_on_a_pin_without_adc_says_so(make_node, chip):
    n = make_node(board=chip, sets=["pinmap=adc_0:%d" % NO_ADC[chip]])
    with Shell(n.port) as sh:
        assert sh.cmd("adc measure") == ("Error: ValueError: adc_0 is GPIO %d, which has no ADC on this chip: "
                                         "set pinmap" % NO_ADC[chip])
