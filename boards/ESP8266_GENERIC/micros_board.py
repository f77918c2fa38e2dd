# micrOS's facts of the ESP8266_GENERIC board, frozen with the core by
# boards/ESP8266_GENERIC/manifest.py and chosen at build time (not by sys.platform,
# which is "esp32" on every ESP32 chip). tests/test_chips.py checks it
# against board.json and the chip's upstream sources.
from micropython import const

# logical pin -> GPIO, as board.json "pins" (a string: it stays in flash)
PINS = "builtin:16,pwm_0:15,pwm_1:13,pwm_2:2,pwm_3:0,i2c_sda:4,i2c_scl:5,pwm_4:12,simple_0:16,pwm_5:14,adc_0:0"
# shell clients: lwIP has 5 TCP connections (esp-open-lwip lwipopts.h
# MEMP_NUM_TCP_PCB: the SDK's default 5, which MicroPython keeps); one stays
# for the busy reply, one for WebREPL or an LM's own connection
CLIENTS = const(3)
# one PWM frequency for every pin, at most 1 kHz (esp8266/esppwm.c)
PWM_ONE_FREQ = const(1)
# the NodeMCU/D1 mini LED on GPIO16 lights at level 0
LED_ON = const(0)
