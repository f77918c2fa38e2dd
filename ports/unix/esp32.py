# Virtual board: the `esp32` module of MicroPython v1.28.0 (ports/esp32/modesp32.c):
# raw_temperature() on the ESP32 (Fahrenheit), mcu_temperature() on the other
# chips, no hall_sensor (removed with ESP-IDF 5). Missing off the ESP32 chips,
# except on a sim booted from a flash image with a partition table (idfboot.py),
# where esp32.Partition (esp32part.py) is the whole module.
import sys

import chip
import devices

if chip.PLATFORM == "esp8266" or (chip.PLATFORM != "esp32" and "esp32part" not in sys.modules):
    raise ImportError("no module named 'esp32'")

if chip.NAME == "esp32":

    def raw_temperature():
        return devices.TEMP_F[0]

elif chip.NAME:

    def mcu_temperature():
        return round((devices.TEMP_F[0] - 32) / 1.8)


def __getattr__(name):
    # esp32.Partition only with a partition table: the class loads on first use
    if name == "Partition" and "esp32part" in sys.modules:
        return sys.modules["esp32part"].Partition
    raise AttributeError(name)
