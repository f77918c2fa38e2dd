# Virtual board: the rules of the chips the shims can impersonate, one row per
# chip, each read from MicroPython v1.28.0's C sources (the file is named beside
# the row and where the rule is used: machine.py, network.py, time.py, simboot.py;
# see docs/boards.md). chip.py reads the impersonated chip's row at boot and
# drops this module, so neither the plain sim nor a chip keeps the table in RAM.
# name: (GPIOs, input-only, no IRQ, no pull, PWM pins ("" = every output pin),
#        CPU MHz choices, MHz at boot, ESP8266-style PWM (one frequency), time
#        kept across machine.reset(), soft reset on SystemExit from main.py,
#        lwIP active TCP connections, lwIP sockets (0: no socket table); lwip.py models both,
#        LEDC: speed modes, channels per mode, timer bit width, REF_TICK below 10 Hz
#        ("": no LEDC); ledc.py models it)
ROWS = {
    # machine_pin.c pyb_pin_obj[]: 0-5, 9, 10, 12-16; GPIO16 has no IRQ and no pull;
    # esppwm.c pin_num[]: PWM on 0, 2, 4, 5, 12-15; modmachine.c: 80 or 160 MHz;
    # machine_rtc.c: the RTC tick restarts at 0 after a reset, the stored delta stays;
    # main.c ignores what main.py returns; esp-open-lwip lwipopts.h: MEMP_NUM_TCP_PCB
    # is the SDK's register value, 5 by default (espconn), MicroPython never raises it;
    # modlwip.c uses lwIP's raw API: no socket table
    "esp8266": ("0-5,9,10,12-16", "", "16", "16", "0,2,4,5,12-15", "80,160", 80, 1, 0, 0, 5, 0, ""),
    # machine_pin.h CONFIG_IDF_TARGET_ESP32 (no SPIRAM): 0-23, 25-27, 32-39;
    # machine_pin.c GPIO_FIRST_NON_OUTPUT 34; modmachine.c: 20/40/80/160/240 MHz;
    # main.c: SystemExit from main.py -> soft_reset_exit; sdkconfig.base LWIP_MAX_ACTIVE_TCP=12;
    # ESP-IDF v5.5.1 components/lwip/Kconfig LWIP_MAX_SOCKETS default 10 (MicroPython keeps it);
    # LEDC: ESP-IDF v5.5.1 components/soc/<chip>/include/soc/soc_caps.h SOC_LEDC_* (HS mode,
    # channels, timer bit width, REF_TICK), as esp32/machine_pwm.c uses them
    "esp32": ("0-23,25-27,32-39", "34-39", "", "", "", "20,40,80,160,240", 160, 0, 1, 1, 12, 10, "2,8,20,1"),
    # machine_pin.h ESP32C3 with USB Serial/JTAG (the generic C3 board): 0-13, 20, 21
    "esp32c3": ("0-13,20,21", "", "", "", "", "20,40,80,160", 160, 0, 1, 1, 12, 10, "1,6,14,0"),
    # machine_pin.h ESP32S3: the stock ESP32_GENERIC_S3 build has quad SPIRAM (mpconfigboard.cmake
    # takes sdkconfig.spiram_sx: CONFIG_SPIRAM=y, CS on GPIO26), so no GPIO26; 19/20 stay (the
    # `#if !CONFIG_USB_CDC_ENABLED` guard: that option is set nowhere in the port or the IDF);
    # extended IO (mpconfigport.h MICROPY_HW_ESP32S3_EXTENDED_IO 1): 47, 48
    "esp32s3": ("0-21,33-48", "", "", "", "", "20,40,80,160,240", 160, 0, 1, 1, 12, 10, "1,8,14,0"),
    # SPIRAM variants (chip+VARIANT, the variant of board.json): machine_pin.h drops the PSRAM's pins.
    # ESP32_GENERIC SPIRAM (mpconfigvariant_SPIRAM.cmake, sdkconfig.spiram CONFIG_SPIRAM=y): no 16, 17
    "esp32+SPIRAM": ("0-15,18-23,25-27,32-39", "34-39", "", "", "", "20,40,80,160,240", 160, 0, 1, 1, 12, 10,
                     "2,8,20,1"),
    # ESP32_GENERIC_S3 SPIRAM_OCT (sdkconfig.spiram_oct CONFIG_SPIRAM_MODE_OCT=y): no 33-37 either
    "esp32s3+SPIRAM_OCT": ("0-21,38-48", "", "", "", "", "20,40,80,160,240", 160, 0, 1, 1, 12, 10, "1,8,14,0"),
}
