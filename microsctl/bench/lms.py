"""Part of the benchmark section `forms`: each Load Module's first-use heap cost
on the virtual board (unix port, 64-bit objects): `sim heap` alloc after the
module's first call, minus before it; the module is unloaded between calls."""
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port

# one first call per LM, the device models wired first where one must answer
FIRST = (
    ("light", [], "light rgb 10 20 30"),
    ("dimmer", [], "dimmer set_value 300"),
    ("switch", [], "switch set_state 1"),
    ("servo", [], "servo Servo 77"),
    ("adc", [], "adc measure"),
    ("distance_HCSR04", ["sim distance pwm_5 500"], "distance_HCSR04 distance_mm"),
    ("motion_sensor", [], "motion_sensor get_PIR_state"),
    ("neopixel", [], "neopixel neopixel 1 2 3"),
    ("air", ["sim dht simple_1 21 40"], "air measure"),
    ("oled_128x64i2c", [], "oled_128x64i2c text hi 0 0"),
)


def _alloc(sh):
    line = [x for x in sh.cmd("sim heap").splitlines() if x.startswith("alloc: ")][0]
    return int(line.split(": ")[1])


def measure(tmp, **node_kw):
    """[(module, bytes)] for each LM's first call on one booted node."""
    node = SimNode("lms", root=tmp, **node_kw)
    node.prepare("default", [], port=free_port(), fresh=True)
    node.start()
    out = []
    try:
        with Shell(node.port) as sh:
            sh.cmd("sim heap")  # LM_sim itself loaded before the first figure
            for mod, wiring, call in FIRST:
                for w in wiring:
                    sh.cmd(w)
                before = _alloc(sh)
                reply = sh.cmd(call)
                if reply.startswith("Error"):
                    out.append((mod, None))
                    continue
                out.append((mod, _alloc(sh) - before))
                sh.cmd(f"system module unload={mod}")
    finally:
        node.stop()
    return out


def report(rows):
    lines = ["", "### Load Modules: heap on first use (unix port, .mpy)", "",
             "Nothing of a Load Module is in RAM before its first call.", "",
             "| module | first call | heap |", "|---|---|---|"]
    calls = {m: c for m, _, c in FIRST}
    lines += [f"| {m} | `{calls[m]}` | {'-' if b is None else f'{b} B'} |" for m, b in rows]
    return lines
