# ESP32_GENERIC with micrOS frozen in: FROZEN_MANIFEST=<this file>.
# The ESP32 port manifest already freezes asyncio.
include("$(PORT_DIR)/boards/manifest.py")

# the core and every Load Module of the original micrOS (issue 12)
include("$(MICROS_DIR)/frozen/micros", lms=True)

# The board's own facts for the core (pins, shell clients): micros_board.py here.
module("micros_board.py", opt=3)
