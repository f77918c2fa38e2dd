# micrOS core. The frozen Load Modules are listed here because frozen code
# cannot be listed from a filesystem; help skips those a board did not freeze
# (the ESP8266 ships the original's LMs as .mpy files when a profile uses them).
VERSION = "0.1.0"
# one string, not a tuple of names: on the .mpy/ROMFS forms every name would be a qstr in RAM
LMS = "system gpio sched light dimmer switch servo adc distance_HCSR04 motion_sensor neopixel air oled_128x64i2c oled_widgets esp32"
