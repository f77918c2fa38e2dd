# The virtual board's stand-ins for what a board has in its firmware (machine, network,
# time, the chip's lwIP limits, esp32, ...) and its boot script, frozen into a unix-port
# binary that runs the virtual board (shared/tools/unix-frozen.sh through
# boards/sim/manifest.py, `invoke build --board unix` through boards/unix/manifest.py).
# Frozen, they run in place as a board's C modules do: the heap holds only their objects.
# From .mpy files (MICROS_SIM_PORTMPY) their bytecode and names sit in the heap too,
# which a board never pays (docs/ram.md).
#
# Frozen as ports/unix/<name>.py, off the binary's default import path ('', '.frozen', ...):
# nothing else run on this binary gets the sim's `time` or `machine`. simboot.py puts
# .frozen/ports/unix first on sys.path. simboot.py itself is frozen top-level, so the sim
# can start as `micropython -m simboot FSDIR CODEDIR` (microsctl/node/sim.py does when the
# binary has it) and its own code runs in place too.
# The list is microsctl/node/sim.py's PORT_MODULES (tests check it) plus what flashboot.py's
# boot uses (esp32part: esp32.Partition; idfboot: the ESP-IDF bootloader's choice).

package(
    "ports/unix",
    files=["chip.py", "chips.py", "chiprtc.py", "ledc.py", "lwip.py", "machine.py", "machmore.py", "network.py",
           "ntptime.py", "time.py", "webrepl.py", "LM_sim.py", "flashdev.py", "devices.py", "dht.py", "neopixel.py",
           "esp32.py", "esp32part.py", "idfboot.py"],
    base_path="$(MICROS_DIR)",
    opt=3,
)
module("simboot.py", opt=3)
