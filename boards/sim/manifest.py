# Read by two builds:
# - `invoke build --board sim`: the virtual board's "firmware", a ROMFS image of the micrOS
#   core, mounted at /rom by ports/unix/simboot.py. microsctl.firmware.manifest.for_board
#   evaluates it with romfs=True: the core only (the unix port brings asyncio itself).
# - a MicroPython unix-port build (tools/makemanifest.py: shared/tools/unix-frozen.sh after
#   the port's standard variant): the binary the virtual board runs on, with the core and the
#   board's stand-ins for its firmware modules frozen in (ports/unix/manifest.py), so the
#   measure of issue 11 holds only what a board would hold in its heap.
# the core and every Load Module of the original micrOS (issue 12)
include("$(MICROS_DIR)/frozen/micros", lms=True)

# The board's own facts for the core (pins, shell clients): micros_board.py here.
module("micros_board.py", opt=3)

if not options.romfs:
    include("$(MICROS_DIR)/ports/unix/manifest.py")
