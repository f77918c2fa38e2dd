# ESP32_GENERIC with micrOS frozen in: FROZEN_MANIFEST=<this file>.
# The ESP32 port manifest already freezes asyncio.
include("$(PORT_DIR)/boards/manifest.py")

include("$(MICROS_DIR)/frozen/micros")
