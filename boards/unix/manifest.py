# The MicroPython unix port with micrOS frozen in (invoke build --board unix):
# a host binary the virtual board runs on, `invoke sim --micropython PATH --frozen`.
# The port's own "standard" variant manifest first (asyncio, the unix-ffi
# library, ...), as the stock unix binary has it; then the core.
include("$(PORT_DIR)/variants/standard/manifest.py")

include("$(MICROS_DIR)/frozen/micros", lms=True)  # as the sim: every Load Module of the original

# It runs as the virtual board: the sim's own facts for the core (pins, shell clients).
module("micros_board.py", base_path="$(MICROS_DIR)/boards/sim", opt=3)

# and the virtual board's stand-ins for a board's firmware modules, with simboot (as
# shared/tools/unix-frozen.sh's binary has them through boards/sim/manifest.py)
include("$(MICROS_DIR)/ports/unix/manifest.py")
