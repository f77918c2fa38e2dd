# The micrOS core as a frozen package: config, shell, LM calls, scheduler and
# the built-in Load Modules (LM_*). Board manifests include() this file.
# main.py is NOT frozen: it stays on the filesystem (ports/main.py) and calls
# micros.core.start(), so a broken core or profile can still be recovered.
#
# Optimisation level (mpy-cross -O) per module, recorded in build-info.json:
#   1  asserts and `if __debug__` blocks compiled out, line numbers kept:
#      modules that parse what users type or schedule, whose tracebacks
#      users send back;
#   3  also without line numbers: small leaf modules; saves flash, and RAM
#      when the bytecode is loaded from a filesystem.
# Every .py of the package must be listed here (tests check it), so a new
# module gets an explicit level.
metadata(description="micrOS core and built-in Load Modules")

package(
    "micros",
    files=["core.py", "conf.py", "confw.py", "call.py", "shell.py", "shellx.py", "auth.py", "sched.py", "schedup.py",
           "cron.py", "cronrun.py", "ota.py", "mqtt.py", "mqttcmd.py"],
    base_path="..",
    opt=1,
)
package(
    "micros",
    files=["__init__.py", "boot.py", "pins.py", "net.py", "pled.py", "lmcache.py", "sysmore.py", "LM_system.py",
           "LM_gpio.py", "LM_sched.py", "guard.py", "netwatch.py", "mqttha.py",
           "mqttnet.py"],
    base_path="..",
    opt=3,
)
# The original micrOS's Load Modules (issue 12), frozen where the board asks for
# them: include("$(MICROS_DIR)/frozen/micros", lms=True). The ESP32 boards and
# the sim do; the ESP8266's irom0 has no room, so its filesystem image carries
# them as .mpy when a profile uses them (docs/load-modules.md).
options.defaults(lms=False)
if options.lms:
    package(
        "micros",
        files=["LM_light.py", "LM_dimmer.py", "LM_switch.py", "LM_servo.py", "LM_adc.py", "LM_distance_HCSR04.py",
               "LM_motion_sensor.py", "LM_neopixel.py", "LM_air.py", "LM_oled_128x64i2c.py", "LM_oled_widgets.py",
               "LM_esp32.py"],
        base_path="..",
        opt=3,
    )
    # firmware OTA through esp32.Partition: the ESP32 family and the sim (their manifests ask
    # for lms); MicroPython has no firmware OTA on the ESP8266, where micros.ota says so
    package("micros", files=["fwota.py"], base_path="..", opt=1)
