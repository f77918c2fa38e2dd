# micrOS's facts of the ESP32_GENERIC board, frozen with the core by
# boards/ESP32_GENERIC/manifest.py and chosen at build time (not by sys.platform,
# which is "esp32" on every ESP32 chip). tests/test_chips.py checks it
# against board.json and the chip's upstream sources.
from micropython import const

# logical pin -> GPIO, as board.json "pins" (a string: it stays in flash)
PINS = "builtin:2,pwm_0:15,pwm_1:25,pwm_2:26,pwm_3:27,i2c_sda:21,i2c_scl:22,pwm_4:4,simple_0:18,pwm_5:19,simple_1:23,adc_0:36,simple_2:5"
# shell clients: ESP-IDF's LWIP_MAX_SOCKETS (v5.5.1 components/lwip/Kconfig:
# default 10, MicroPython keeps it; sdkconfig.base LWIP_MAX_ACTIVE_TCP=12 is the
# looser limit) less the shell's listening socket, one for a new client while the
# longest-idle gives its slot up, WebREPL's listener and one for NTP or an LM
CLIENTS = const(6)
PWM_ONE_FREQ = const(0)
LED_ON = const(1)
