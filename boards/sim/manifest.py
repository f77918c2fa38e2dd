# The virtual board: its "firmware" is a ROMFS image of the micrOS core
# (invoke build --board sim), mounted at /rom by ports/unix/simboot.py.
# The unix port brings asyncio itself; nothing of the port is frozen here.
# the core and every Load Module of the original micrOS (issue 12)
include("$(MICROS_DIR)/frozen/micros", lms=True)

# The board's own facts for the core (pins, shell clients): micros_board.py here.
module("micros_board.py", opt=3)
