"""The virtual board's shims stand in for C modules that cost a board no heap: on the
plain sim they must carry only what the node uses (no chip tables, no chip RTC clock,
no PWM or Timer until asked), so the node's heap figures measure the core, not the
stand-ins. Run in the real unix port, on the shims as the sim loads them (-O3 .mpy)."""
import os
import subprocess

from microsctl.node.sim import port_mpy
from microsctl.run import micropython

SHIMS = "chip,time,machine,network"
# PyPI unix port (64-bit objects), -O3 .mpy, measured as below: 16,768 B before the
# tables and cold parts were split off (chip.py held every chip's rules), 12,448 B after
BUDGET = 14000


def _run(code, chip=None):
    env = dict(os.environ)
    env.pop("MICROS_SIM_CHIP", None)
    env.pop("MICROS_SIM_CLOCK", None)
    if chip:
        env["MICROS_SIM_CHIP"] = chip
    pre = "import gc, sys\nsys.path[:] = [%r]\ngc.collect()\nb = gc.mem_alloc()\n" % str(port_mpy())
    p = subprocess.run([micropython(), "-X", "heapsize=256k", "-c", pre + code], capture_output=True, text=True,
                       env=env, timeout=30)
    assert p.returncode == 0, p.stderr or p.stdout
    return p.stdout.split()


def test_plain_sim_shims_fit_their_budget_and_load_no_chip_rules():
    out = _run("for m in %r.split(','):\n    __import__(m)\ngc.collect()\n"
               "print(gc.mem_alloc() - b, 'chips' in sys.modules, 'chiprtc' in sys.modules,"
               " 'machmore' in sys.modules)\n" % SHIMS)
    assert out[1:] == ["False", "False", "False"]
    assert int(out[0]) <= BUDGET, f"the plain sim's shims take {out[0]} B at boot (budget {BUDGET})"


def test_an_impersonated_chip_keeps_only_its_row():
    out = _run("import chip\nprint('chips' in sys.modules, sorted(chip.NO_IRQ), 34 in chip.GPIO)\n", chip="esp8266")
    assert out == ["False", "[16]", "False"]


def test_pwm_and_timer_load_on_first_use():
    out = _run("import machine\nprint('machmore' in sys.modules)\np = machine.PWM(machine.Pin(4), freq=50)\n"
               "print('machmore' in sys.modules, machine.PWMS[4][0])\n")
    assert out == ["False", "True", "50"]
