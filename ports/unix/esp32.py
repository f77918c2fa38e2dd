# Virtual board: the `esp32` module of MicroPython v1.28.0 (ports/esp32/modesp32.c):
# raw_temperature() on the ESP32 (Fahrenheit), mcu_temperature() on the other
# chips, no hall_sensor (removed with ESP-IDF 5). Missing off the ESP32 chips.
import chip
import devices

if chip.PLATFORM != "esp32":
    raise ImportError("no module named 'esp32'")

if chip.NAME == "esp32":

    def raw_temperature():
        return devices.TEMP_F[0]

else:

    def mcu_temperature():
        return round((devices.TEMP_F[0] - 32) / 1.8)
