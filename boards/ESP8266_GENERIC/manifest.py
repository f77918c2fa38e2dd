# ESP8266_GENERIC with micrOS frozen in: make ... FROZEN_MANIFEST=<this file>.
# This replaces the board's own manifest_2MiB.py, whose extras (ssd1306,
# urequests, umqtt, ...) micrOS does not need and irom0 cannot spare.
include("$(PORT_DIR)/boards/manifest.py")

# The ESP8266 port manifest never freezes asyncio (manifest_2MiB.py added it,
# FLASH_1M/512K have none): the micrOS core needs it.
include("$(MPY_DIR)/extmod/asyncio")

include("$(MICROS_DIR)/frozen/micros")

# The board's own facts for the core (pins, shell clients): micros_board.py here.
module("micros_board.py", opt=3)
