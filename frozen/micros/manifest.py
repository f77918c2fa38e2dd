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
    files=["core.py", "conf.py", "call.py", "shell.py", "shellx.py", "auth.py", "sched.py", "cron.py"],
    base_path="..",
    opt=1,
)
package(
    "micros",
    files=["__init__.py", "boot.py", "pins.py", "net.py", "pled.py", "LM_system.py", "LM_gpio.py", "LM_sched.py",
           "guard.py", "netwatch.py"],
    base_path="..",
    opt=3,
)
