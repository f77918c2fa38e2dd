# micrOS's facts of the sim board, frozen with the core by
# boards/sim/manifest.py and chosen at build time (not by sys.platform,
# which is "esp32" on every ESP32 chip). tests/test_chips.py checks it
# against board.json and the chip's upstream sources.
from micropython import const

# logical pin -> GPIO, as board.json "pins" (a string: it stays in flash)
PINS = "builtin:2,pwm_0:15,pwm_1:25,pwm_2:26,pwm_3:27,i2c_sda:21,i2c_scl:22,pwm_4:4,simple_0:18,pwm_5:19,simple_1:23,adc_0:36,simple_2:5"
# shell clients: the virtual board runs on the host, which has sockets to spare
CLIENTS = const(24)
PWM_ONE_FREQ = const(0)
LED_ON = const(1)
