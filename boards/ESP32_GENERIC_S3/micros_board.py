# micrOS's facts of the ESP32_GENERIC_S3 board, frozen with the core by
# boards/ESP32_GENERIC_S3/manifest.py and chosen at build time (not by sys.platform,
# which is "esp32" on every ESP32 chip). tests/test_chips.py checks it
# against board.json and the chip's upstream sources.
from micropython import const

# logical pin -> GPIO, as board.json "pins" (a string: it stays in flash)
PINS = "builtin:48,pwm_0:4,pwm_1:5,pwm_2:6,pwm_3:7,i2c_sda:8,i2c_scl:9,pwm_4:15,simple_0:17,pwm_5:16,simple_1:18,adc_0:1,simple_2:21"
# shell clients: ESP-IDF's LWIP_MAX_SOCKETS (v5.5.1 components/lwip/Kconfig:
# default 10, MicroPython keeps it; sdkconfig.base LWIP_MAX_ACTIVE_TCP=12 is the
# looser limit) less the shell's listening socket, one for a new client while the
# longest-idle gives its slot up, WebREPL's listener and one for NTP or an LM
CLIENTS = const(6)
PWM_ONE_FREQ = const(0)
LED_ON = const(1)
