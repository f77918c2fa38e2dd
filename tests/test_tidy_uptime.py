"""Uptime past the ticks wrap (frozen/micros/core.py uptime, LM_system info), on the real MicroPython.

On the boards time.ticks_ms() counts modulo MICROPY_PY_TIME_TICKS_PERIOD = 2**30 ms (the 32-bit
ports' small-int range; extmod/modtime.c v1.28.0 masks mp_hal_ticks_ms() with it, and ticks_diff
answers in [-2**29, 2**29)), so a plain ticks_diff(ticks_ms(), BOOT_MS) goes negative after
2**29 ms, 6.2 days. The unix port's period is 2**62, so the script puts in a time module whose
ticks model modtime.c's at the boards' period, driven by a clock the script moves."""
import json
import subprocess

from microsctl import BOARDS, FROZEN, PORTS
from microsctl.run import micropython

SCRIPT = r"""
import sys, os
sys.path[:0] = [%(unix)r, %(frozen)r, %(sim)r]
os.chdir(%(tmp)r)
import time
_P = const(1 << 30)  # MICROPY_PY_TIME_TICKS_PERIOD on the 32-bit ports (extmod/modtime.c)
NOW = [_P - 60000]  # the board's ms counter: boot a minute before the wrap
time.ticks_ms = lambda: NOW[0] & (_P - 1)
time.ticks_diff = lambda a, b: ((a - b + _P // 2) & (_P - 1)) - _P // 2
def _add(t, d):
    if not -_P // 2 < d < _P // 2:
        raise OverflowError("ticks interval overflow")
    return (t + d) & (_P - 1)
time.ticks_add = _add
from micros import conf, core
conf.load()
from micros import LM_system
out = []
for hour in range(24 * 14):  # two weeks, as core._main's hourly loop sees them
    NOW[0] += 3600000
    if hasattr(core, "uptime"):
        core.uptime()
    if hour %% 24 == 23:
        out.append(LM_system.info()["uptime_s"])
NOW[0] += 1500  # and a second and a half more
out.append(LM_system.info()["uptime_s"])
print(out)
"""


def test_uptime_stays_right_past_the_boards_ticks_wrap(tmp_path):
    src = SCRIPT % {"unix": str(PORTS / "unix"), "frozen": str(FROZEN), "sim": str(BOARDS / "sim"),
                    "tmp": str(tmp_path)}
    res = subprocess.run([micropython(), "-c", src], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    days = json.loads(res.stdout.strip().splitlines()[-1])
    assert days == [d * 86400 for d in range(1, 15)] + [14 * 86400 + 1]


# core._main's last loop is what folds the seconds in while nobody asks: run it with the
# scheduler's sleeps moving the board's clock instead of waiting (the shell stubbed out).
MAIN = r"""
import sys, os
sys.path[:0] = [%(unix)r, %(frozen)r, %(sim)r]
os.chdir(%(tmp)r)
import time, asyncio
_P = const(1 << 30)  # MICROPY_PY_TIME_TICKS_PERIOD on the 32-bit ports (extmod/modtime.c)
NOW = [_P - 60000]
time.ticks_ms = lambda: NOW[0] & (_P - 1)
time.ticks_diff = lambda a, b: ((a - b + _P // 2) & (_P - 1)) - _P // 2
time.ticks_add = lambda t, d: (t + d) & (_P - 1)
class Shell:
    async def serve():
        pass
sys.modules["micros.shell"] = Shell
class Done(Exception):
    pass
async def sleep_ms(ms):
    NOW[0] += ms
async def sleep(s):
    if NOW[0] > _P - 60000 + 14 * 86400000:
        raise Done
    NOW[0] += s * 1000
asyncio.sleep, asyncio.sleep_ms = sleep, sleep_ms
from micros import conf, core
conf.load()
try:
    asyncio.run(core._main())
except Done:
    pass
from micros import LM_system
print(LM_system.info()["uptime_s"])
"""


def test_the_main_loop_keeps_uptime_right_with_nobody_asking(tmp_path):
    src = MAIN % {"unix": str(PORTS / "unix"), "frozen": str(FROZEN), "sim": str(BOARDS / "sim"),
                  "tmp": str(tmp_path)}
    res = subprocess.run([micropython(), "-c", src], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    assert int(res.stdout.strip().splitlines()[-1]) == 30 + 336 * 3600  # the 30 s boot guard, then 14 days
