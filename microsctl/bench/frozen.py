"""Section `frozen`: where the heap goes on a MicroPython binary with micrOS frozen in
(issue 11). Build one with shared/tools/unix-frozen.sh, 32-bit for the closest stand-in
for an ESP8266's heap, and measure it:

    invoke bench --only frozen --micropython PATH/TO/micropython

The figures land in docs/benchmarks.md under `frozen-32` or `frozen-64` (the binary's word
size), so a 32-bit and a 64-bit run sit side by side. Given no binary with micrOS frozen
in (CI cannot build MicroPython), the section says why it skipped and records nothing.

Every figure is the node's own `gc.collect()` then `gc.mem_alloc()`/`gc.mem_free()`, taken
inside the node by a probe task (PROBE below) started from the node's main.py: no shell
client is connected when it measures. The probe's own bytes are measured in the same boot
and taken off (main.py collects before and after importing it).
"""
import itertools
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from microsctl import PORTS, MicrosError
from microsctl.bench import Skipped
from microsctl.node.client import Shell
from microsctl.node.sim import PORT_FROZEN, SimNode, frozen_core, frozen_simboot, free_port, port_mpy
from microsctl.run import micropython

# scheduling off: the plain profile (shell and heartbeat LED); on: the timer callback
# every 3 s (heartbeat profile) and cron armed, as in the `forms` section
SETUPS = (
    ("off", "default", []),
    ("on", "heartbeat", ["cron=True", "crontasks=*:*:*:0!system gccollect"]),
)
HEAPS = ("38k", "64k")
CLIENT_HEAP = "38k"  # where an extra client's cost is measured (the target heap)
COMMANDS = (("system memfree", "CPU[Hz]"), ("help", "system"))  # each of 3 clients runs both
SETTLE_S = 1.5  # after the shell listens: the scheduler starts and its timer first fires

# The probe: a task that, each time the file probe.go appears in the node's folder, collects
# and prints the heap in use and free, whether the scheduler is loaded, and the heap the
# sim's shims and the VM held before the core was imported (simboot.py's machine.HEAP_BASE).
# Then, allocating freely, the micros modules loaded, and MicroPython's own counts:
# mem_info() (block counts, the largest free block) and qstr_info() (interned names in RAM).
# Polling a file keeps every shell client out of the figure.
PROBE = """import asyncio, gc, micropython, os, sys
async def _run():
    while True:
        await asyncio.sleep_ms(50)
        try:
            os.remove("probe.go")
        except OSError:
            continue
        gc.collect()
        a = gc.mem_alloc()
        f = gc.mem_free()
        b = getattr(sys.modules.get("machine"), "HEAP_BASE", 0)  # the sim's: before the core
        print("heapprobe:", a, f, int("micros.sched" in sys.modules), b)
        print("heapmods:", " ".join(sorted(m for m in sys.modules if m.startswith("micros"))))
        micropython.mem_info()
        micropython.qstr_info()
        print("heapprobe end")
asyncio.create_task(_run())
"""
# Put before the node's own main.py: the probe's bytes (its module, bytecode and task).
PROBE_MAIN = """import gc, asyncio
gc.collect()
_b = gc.mem_alloc()
import heapprobe
gc.collect()
print("heapprobe own:", gc.mem_alloc() - _b)
del _b
"""
LISTENING = "micrOS shell on "
ORIGINAL_ENV = "MICROS_ORIGINAL_SRC"  # invoke bench --original-src: the original v0.4 measured too
_NODES = itertools.count(1)  # each measuring node gets a folder of its own


def binary_facts(exe, heap="38k"):
    """(version, word size in bits, the GC's pool at `heap`) read from the binary itself."""
    probe = ("import gc,sys;print('%d.%d.%d' % sys.implementation.version[:3], "
             "64 if sys.maxsize > 1 << 32 else 32, gc.mem_free() + gc.mem_alloc())")
    argv = [exe, "-X", f"heapsize={heap}", "-c", probe]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.split()
        ver, bits, pool = out
        return ver, int(bits), int(pool)
    except (OSError, subprocess.TimeoutExpired, ValueError) as err:
        raise MicrosError(f"{exe} does not answer as a MicroPython unix port ({err}): give such a binary") from err


class Node:
    """One virtual node on `exe` for measuring: the frozen core, or (frozen=False, for tests
    on a binary without one) this tree's core as .mpy; with the probe unless probe=False."""

    listening = LISTENING  # what the node logs once its shell listens

    def __init__(self, tmp, exe, heap, setup, frozen=True, probe=True):
        _, profile, sets = setup
        self.node = SimNode(f"{setup[0]}-{heap}-{next(_NODES)}", root=tmp, heap=heap, frozen=frozen,
                            micropython=exe)
        if not frozen:
            self.node.code = self.node.code_dir()  # never the environment's default core
        self.node.prepare(profile, sets, port=free_port(), fresh=True)
        self.probe = probe
        if probe:
            self.node.fs.joinpath("heapprobe.py").write_text(PROBE)
            main = self.node.fs / "main.py"
            main.write_text(PROBE_MAIN + main.read_text())
        self.own = None
        self.seen = 0  # probe lines already read from the log

    @property
    def port(self):
        return self.node.port

    def _log(self):
        return self.node.log.read_text(errors="replace") if self.node.log.exists() else ""

    def boot(self, timeout=10):
        """Start; wait for the shell to listen (from the log: no client connects). Raises
        MicrosError when the node dies or does not come up."""
        self.node.start(wait=False)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            log = self._log()
            if self.listening in log:
                if self.probe:
                    self.own = int(re.search(r"heapprobe own: (\d+)", log).group(1))
                return self
            if not self.node._thread.is_alive():
                raise MicrosError(f"node exited ({self.node.rc}) before its shell listened")
            time.sleep(0.05)
        raise MicrosError(f"node did not listen within {timeout} s")

    def measure(self, timeout=5):
        """{used, free, sched, base, ...} now: heap in use and free (the probe's own bytes taken
        off), whether the scheduler is loaded, the heap held before the core (the sim's),
        the micros modules loaded, the largest free block (blocks), qstrs interned in RAM."""
        self.node.fs.joinpath("probe.go").write_text("")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            log = self._log()
            found = re.findall(r"heapprobe: (\d+) (\d+) (\d) (\d+)\n(.*?)heapprobe end", log, re.S)
            if len(found) > self.seen:
                self.seen = len(found)
                *nums, rest = found[-1]
                used, free, sched, base = (int(x) for x in nums)

                def num(pat):
                    m = re.search(pat, rest)
                    return int(m.group(1)) if m else None

                mods = re.search(r"heapmods: (.*)", rest)
                # what the boot said went wrong (e.g. "sched: failed: MemoryError ..."): the figures
                # are of a node that is not fully up
                head = log[:log.index("heapprobe: ")]
                errors = [x.strip() for x in head.splitlines() if re.search(r"failed|Error|safe mode", x)]
                return {"used": used - self.own, "free": free + self.own, "sched": bool(sched), "base": base,
                        "modules": mods.group(1).split() if mods else [], "max_free": num(r"max free sz: (\d+)"),
                        "qstrs": num(r"n_qstr=(\d+)"), "qstr_bytes": num(r"n_total_bytes=(\d+)"),
                        "errors": errors}
            time.sleep(0.05)
        raise MicrosError(f"the heap probe did not answer; see {self.node.log}")

    def stop(self):
        self.node.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def after_boot(tmp, exe, heap, setup, frozen=True, clients=0):
    """Heap in use and free with the shell listening, SETTLE_S after it came up; with
    clients > 0, also with 1..clients idle clients connected (each has run `hello`), and
    once they have all disconnected. Returns ([Node.measure()] for 0.. clients connected,
    why it stopped short or "", Node.measure() after they left or None)."""
    with Node(tmp, exe, heap, setup, frozen) as n:
        n.boot()
        time.sleep(SETTLE_S)
        out = [n.measure()]
        shells = []
        why = ""
        try:
            for _ in range(clients):
                try:
                    sh = Shell(n.port, timeout=10)
                    shells.append(sh)
                    reply = sh.cmd("hello")
                    if not reply.startswith("hello:"):
                        raise MicrosError(reply[:80])
                except (MicrosError, OSError) as err:  # this heap holds no more clients
                    why = f"client {len(out)}: {str(err).split(';')[0]}"
                    break
                time.sleep(0.2)
                out.append(n.measure())
        finally:
            for sh in shells:
                sh.close()
        closed = None
        if shells:
            time.sleep(1.2)  # the node sees every close and its tasks end
            try:
                closed = n.measure()
            except MicrosError:  # a node the clients broke does not answer: no figure
                pass
    return out, why, closed


def serves(tmp, exe, heap, setup, frozen=True, clients=3):
    """Does a node boot at `heap` (not in safe mode) and serve `clients` connected at once,
    each running COMMANDS concurrently? (ok, why not)"""
    with Node(tmp, exe, heap, setup, frozen, probe=False) as n:
        try:
            n.boot(timeout=8)
            shells = [Shell(n.port, timeout=8) for _ in range(clients)]
        except (MicrosError, OSError) as err:
            return False, f"boot: {err}"
        bad = []

        def work(sh):
            try:
                for cmd, want in COMMANDS:
                    reply = sh.cmd(cmd)
                    if want not in reply or "Error" in reply:
                        bad.append(f"{cmd}: {reply[:60]!r}")
            except (MicrosError, OSError) as err:
                bad.append(f"{cmd}: {err}")

        try:
            threads = [threading.Thread(target=work, args=(sh,)) for sh in shells]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            if not bad:
                info = shells[0].cmd("system info")
                if "safemode: False" not in info:
                    bad.append("safe mode")
        except (MicrosError, OSError) as err:
            bad.append(str(err))
        finally:
            for sh in shells:
                sh.close()
        return not bad, "; ".join(bad)


def smallest_heap(tmp, exe, setup, lo=8, hi=64, runs=3, frozen=True, progress=print, serves_at=None,
                  label="frozen"):
    """Bisect in 1 KiB steps the smallest heap (KiB) that boots and serves 3 clients, then
    confirm it over `runs` runs, moving up 1 KiB while the edge is not stable.
    lo is taken as failing without a try; an edge still unstable 8 KiB over hi gives None.
    Returns {"edge": KiB or None (hi fails),
    "below": (passes, runs) one KiB under the edge, "tries": [(KiB, ok, why)]}."""
    tries = []

    def ok(kib):
        res, why = (serves_at or serves)(tmp, exe, f"{kib}k", setup, frozen)
        tries.append((kib, res, why))
        progress(f"[bench] {label}: {setup[0]} {kib} KiB: {'serves' if res else 'fails: ' + why}")
        return res

    if not ok(hi):
        return {"edge": None, "below": None, "tries": tries}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    edge, passes, top = hi, 1, hi + 8  # the bisection's pass at hi is the edge's first run
    while passes < runs:
        if ok(edge):
            passes += 1
        elif edge < top:
            edge, passes = edge + 1, 0
        else:
            return {"edge": None, "below": None, "tries": tries}
    passed = sum(ok(edge - 1) for _ in range(runs))
    return {"edge": edge, "below": (passed, runs), "tries": tries}


# Each micros module imported in turn, in boot order, then the rest: the bytes each import
# holds after gc.collect(), and the modules it brought in (attributed to the first importer).
MODULES_SCRIPT = """import gc, sys
sys.path[:] = %(path)r
names = %(names)r
for n in names:
    if n in sys.modules:
        continue
    before = set(sys.modules)
    gc.collect()
    a = gc.mem_alloc()
    try:
        __import__(n)
    except Exception as e:
        print("mod", n, "-", type(e).__name__)
        continue
    gc.collect()
    print("mod", n, gc.mem_alloc() - a, ",".join(sorted(m for m in sys.modules if m not in before and m != n)) or "-")
"""
BOOT_ORDER = ("micros", "micros.conf", "micros.call", "micros.core", "micros.boot", "micros.net",
              "micros.shell", "micros.pled", "micros.sched", "micros.cron", "micros.LM_system", "micros.LM_sched")
# first what the core stands on: the sim's shims (C modules on a board, costing no heap
# there) and asyncio (frozen on every board)
BEFORE = ("chip", "time", "machine", "network", "socket", "asyncio")
LIST_SCRIPT = "help('modules')"


def frozen_modules(exe):
    """The micros.* modules frozen into exe, from its help('modules')."""
    out = subprocess.run([exe, "-c", LIST_SCRIPT], capture_output=True, text=True, timeout=10).stdout
    return sorted({w.replace("/__init__", "").replace("/", ".") for w in out.split() if w.startswith("micros/")})


def module_costs(exe, frozen=True, heap="256k"):
    """[(module, bytes or None, what it failed with or the modules it pulled in)]."""
    node = SimNode("mods", root=tempfile.gettempdir(), micropython=exe)
    if frozen:
        names = frozen_modules(exe)
        code = ""  # .frozen, last on the path
    else:
        code = str(node.code_dir())
        names = sorted("micros." + p.stem for p in (Path(code) / "micros").glob("*.mpy") if p.stem != "__init__")
        names.insert(0, "micros")
    names = list(BEFORE) + [n for n in BOOT_ORDER if n in names] + [n for n in names if n not in BOOT_ORDER]
    # as simboot.py orders them: the stand-ins frozen in (if the binary has them), compiled, sources
    path = [p for p in (PORT_FROZEN, str(port_mpy()), str(PORTS / "unix"), code, ".frozen") if p]
    script = MODULES_SCRIPT % {"path": path, "names": names}
    env = node.env()
    proc = subprocess.run([exe, "-X", f"heapsize={heap}", "-c", script], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tempfile.gettempdir())
    rows = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "mod":
            _, name, size, extra = parts
            rows.append((name, None if size == "-" else int(size), "" if extra == "-" else extra))
    if not rows:
        raise MicrosError(f"the module measure printed nothing: {(proc.stderr or proc.stdout).strip()[-200:]}")
    return rows


# asyncio's cost on the binary: each case in its own process, bytes held after gc.collect()
# over a base that has gc, socket and sys imported (what any server needs).
ASYNCIO_CASES = {
    "import asyncio": "import asyncio\ndone()",
    "asyncio loop running, one task asleep": "import asyncio\nasync def m():\n    await asyncio.sleep_ms(50)\n"
                                             "    done()\nasyncio.run(m())",
    "asyncio.start_server, idle, inside the running loop": (
        "import asyncio\nasync def cb(r, w):\n    pass\nasync def m():\n"
        "    s = await asyncio.start_server(cb, '127.0.0.1', PORT)\n    await asyncio.sleep_ms(50)\n    done()\n"
        "asyncio.run(m())"),
    "asyncio loop + plain listening socket, one task waiting on it (micros.shell's way)": (
        "import asyncio\ns = socket.socket()\ns.setblocking(False)\n"
        "s.bind(socket.getaddrinfo('127.0.0.1', PORT)[0][-1])\ns.listen(8)\n"
        "async def acc(s):\n    yield asyncio.core._io_queue.queue_read(s)\n"
        "async def m():\n    asyncio.create_task(acc(s))\n    await asyncio.sleep_ms(50)\n    done()\n"
        "asyncio.run(m())"),
    "plain listening socket (non-blocking)": (
        "s = socket.socket()\ns.setblocking(False)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(socket.getaddrinfo('127.0.0.1', PORT)[0][-1])\ns.listen(8)\ndone()"),
    "plain listening socket + select.poll registered": (
        "import select\ns = socket.socket()\ns.setblocking(False)\n"
        "s.bind(socket.getaddrinfo('127.0.0.1', PORT)[0][-1])\ns.listen(8)\n"
        "p = select.poll()\np.register(s, select.POLLIN)\ndone()"),
}
ASYNCIO_BASE = """import gc, socket, sys
PORT = %d
def done():
    gc.collect()
    print("held", gc.mem_alloc() - B)
gc.collect()
B = gc.mem_alloc()
"""


def asyncio_costs(exe, heap="64k"):
    """{case: bytes held over the base}."""
    out = {}
    for name, code in ASYNCIO_CASES.items():
        script = ASYNCIO_BASE % free_port() + code + "\n"
        proc = subprocess.run([exe, "-X", f"heapsize={heap}", "-c", script], capture_output=True, text=True,
                              timeout=20)
        m = re.search(r"held (-?\d+)", proc.stdout)
        if not m:
            raise MicrosError(f"asyncio measure {name!r} failed: {(proc.stderr or proc.stdout).strip()[-200:]}")
        out[name] = int(m.group(1))
    return out


def measure(exe, frozen=True, quick=False, heaps=HEAPS, bisect=None, setups=SETUPS, clients_at=CLIENT_HEAP,
            progress=print):
    """Every figure of the section for one binary, as a dict (report() lays it out).
    bisect: the (lo, hi) KiB range of the smallest-heap search (default by word size)."""
    ver, bits, _ = binary_facts(exe)
    bisect = bisect or ((8, 64) if bits == 32 else (16, 96))
    res = {"exe": exe, "version": ver, "bits": bits, "frozen": frozen, "standins": frozen_simboot(exe),
           "pools": {h: binary_facts(exe, h)[2] for h in heaps}, "boot": {}, "clients": {}, "small": {},
           "clients_at": clients_at, "serves": {}, "runs": 1 if quick else 3}
    with tempfile.TemporaryDirectory() as tmp:
        for setup in setups:
            for h in heaps:
                progress(f"[bench] frozen: after boot, scheduling {setup[0]}, {h}")
                rows, why, closed = after_boot(tmp, exe, h, setup, frozen, clients=3 if h == clients_at else 0)
                res["boot"][(setup[0], h)] = rows[0]
                if h == clients_at:
                    res["clients"][setup[0]] = (rows, why)
                    res.setdefault("closed", {})[setup[0]] = closed
            res["small"][setup[0]] = smallest_heap(tmp, exe, setup, *bisect, runs=res["runs"],
                                                   frozen=frozen, progress=progress)
            if GOAL_HEAP in heaps:  # the goal's "every command at 38k, with 3 clients connected"
                res["serves"][setup[0]] = serves(tmp, exe, GOAL_HEAP, setup, frozen)
    progress("[bench] frozen: per module, asyncio")
    res["modules"] = module_costs(exe, frozen)
    res["asyncio"] = asyncio_costs(exe)
    return res


def _small(s):
    if s["edge"] is None:
        return f"over {s['tries'][0][0]} KiB"
    passed, runs = s["below"]
    return f"**{s['edge']} KiB** ({s['edge'] - 1} KiB: {passed} of {runs} runs)"


# issue 11's goal, for the 32-bit frozen build with timer + cron armed
GOAL_HEAP = "38k"
GOAL_FREE = 25000
GOAL_KIB = 20


def goals(res):
    """Issue 11's goal, judged on this run's figures (timer + cron armed); the original v0.4's
    figures beside them when this run measured it too (res["original"])."""
    def verdict(ok):
        return "meets" if ok else "MISSES"

    orig = res.get("original")
    lines = [f"Issue 11's goal (set for the 32-bit build; this binary is {res['bits']}-bit), timer + cron armed:"]
    m = res["boot"].get(("on", GOAL_HEAP))
    if m:
        up = "" if not m.get("errors") else " (the node was not fully up)"
        o = orig and orig["boot"].get(("on", GOAL_HEAP))
        beside = f"; the original v0.4 on a binary like this one: {o['free']:,} B" if o else ""
        lines.append(f"- free heap after boot at {GOAL_HEAP}: {m['free']:,} B{up} (goal >= {GOAL_FREE:,} B{beside}): "
                     f"{verdict(m['free'] >= GOAL_FREE and not up)}")
    small = res["small"].get("on")
    if small:
        edge = f"{small['edge']} KiB" if small["edge"] else f"over {small['tries'][0][0]} KiB"
        runs = res.get("runs", 3)
        o = orig and orig["small"].get("on")
        beside = (f"; the original: {o['edge']} KiB, one client at a time" if o and o["edge"] else "")
        lines.append(f"- smallest heap serving 3 clients at once, stable over {runs} run{'s' * (runs > 1)}: {edge} "
                     f"(goal <= {GOAL_KIB} KiB{beside}): {verdict(small['edge'] and small['edge'] <= GOAL_KIB)}")
    served = res.get("serves", {}).get("on")
    if served:
        ok, why = served
        lines.append(f"- at {GOAL_HEAP}, 3 clients connected, `system memfree` and `help` on each: "
                     f"{'served' if ok else 'failed: ' + why[:160]}: {verdict(ok)}")
    return lines if len(lines) > 1 else []


def report(res):
    """Markdown for one binary's figures."""
    setups = [s[0] for s in SETUPS if any(k[0] == s[0] for k in res["boot"])]
    heaps = sorted({k[1] for k in res["boot"]}, key=lambda h: int(h[:-1]))
    label = {"off": "scheduling off (`default` profile: shell + heartbeat LED)",
             "on": "timer + cron armed (`heartbeat` profile, cron every minute)"}
    core = "frozen in" if res["frozen"] else "as .mpy on the filesystem (not frozen: a test run)"
    lines = [
        f"Binary: MicroPython {res['version']} unix port, {res['bits']}-bit, micrOS {core}",
        f"(`{Path(res['exe']).parent.name}/{Path(res['exe']).name}`, built with `shared/tools/unix-frozen.sh`).",
        "In use and free: `gc.collect()` then `gc.mem_alloc()`/`gc.mem_free()` inside the node, the shell",
        f"listening, no client connected, {SETTLE_S:g} s after it came up; the probe's own bytes taken off.",
        "GC pool: " + ", ".join(f"{res['pools'][h]:,} B at {h}" for h in heaps) + ". `before the core`:",
        "simboot.py's `machine.HEAP_BASE`, what the VM, the sim's boot script and its stand-ins for C modules",
        "(machine, chip, time) held when the core started to load; a board pays the VM's share only (the",
        "sim's `network` stand-in, imported later by the boot, is in the per-module table).",
        ("The stand-ins and simboot.py are frozen into this binary (ports/unix/manifest.py) and run in place,"
         if res.get("standins") else
         "The stand-ins are .mpy files here (this binary has none frozen in): their bytecode and names are"),
        ("as a board's C modules do: the heap holds their objects only (module dicts, classes, functions)."
         if res.get("standins") else "in the heap too, which a board never pays (docs/ram.md)."),
        "",
        "| setup | " + " | ".join(f"in use at {h} | free at {h}" for h in heaps)
        + " | of which before the core | smallest heap, 3 clients at once (`system memfree` + `help` each) |",
        "|---|" + "---|---|" * len(heaps) + "---|---|",
    ]
    for s in setups:
        cells = []
        for h in heaps:
            m = res["boot"][(s, h)]
            cells += [f"{m['used']:,} B", f"{m['free']:,} B"]
        base = res["boot"][(s, heaps[0])]["base"]
        lines.append(f"| {label[s]} | " + " | ".join(cells) + f" | {base:,} B | {_small(res['small'][s])} |")
    lines += [""] + goals(res) if goals(res) else []
    if res.get("original"):
        from microsctl.bench import original

        lines += original.report(res["original"], res)
    notes = [f"- {label[s]}, {h}: the node logged `{e}`" for s in setups for h in heaps
             for e in res["boot"][(s, h)].get("errors", [])]
    if notes:
        lines += ["", "Not fully up (the figures on that row are of what did start):"] + notes
    block = 4 * res["bits"] // 8  # MICROPY_BYTES_PER_GC_BLOCK: 4 words
    lines += ["", "What the heap holds then (MicroPython's own counts, `micropython.mem_info()` and `qstr_info()`;",
              "the names interned in RAM include the sim's stand-ins'" + (", which are .mpy files here):" if not
                                                                         res.get("standins") else "):"), "",
              "| setup | heap | largest free block | names interned in RAM | micros modules loaded |",
              "|---|---|---|---|---|"]
    for s in setups:
        for h in heaps:
            m = res["boot"][(s, h)]
            biggest = f"{m['max_free'] * block:,} B" if m.get("max_free") is not None else "-"
            names = f"{m['qstrs']} ({m['qstr_bytes']:,} B)" if m.get("qstrs") is not None else "-"
            mods = ", ".join(x.replace("micros.", "") for x in m.get("modules", []) if x != "micros")
            lines.append(f"| {label[s]} | {h} | {biggest} | {names} | {mods} |")
    if res["clients"]:
        lines += ["", f"Per connection at {res['clients_at']}: heap in use with N idle clients connected "
                  "(each has run `hello`):",
                  "", "| setup | 0 | 1 | 2 | 3 | each extra client, B | all gone again (held over 0) |",
                  "|---|---|---|---|---|---|---|"]
        for s in setups:
            rows, why = res["clients"].get(s, ([], ""))
            if rows:
                cells = [f"{r['used']:,}" for r in rows] + ["-"] * (4 - len(rows))
                per = " / ".join(f"+{b['used'] - a['used']:,}" for a, b in zip(rows, rows[1:])) or "-"
                gone = res.get("closed", {}).get(s)
                gone = f"{gone['used']:,} (+{gone['used'] - rows[0]['used']:,})" if gone else "-"
                lines.append(f"| {label[s]} | " + " | ".join(cells) + f" | {per} | {gone} |")
        short = [f"- {label[s]}: stopped at {res['clients'][s][1]}" for s in setups
                 if res["clients"].get(s, ([], ""))[1]]
        lines += [""] + short if short else []
    lines += ["", "Per module: imported in turn in one process at 256k: the sim's stand-ins (C modules on a board)",
              "and asyncio, then the core in boot order; bytes held after `gc.collect()`; a module another",
              "import pulled in is counted with that import:", "",
              "| module | bytes held | also loaded |", "|---|---|---|"]
    for name, size, extra in res["modules"]:
        lines.append(f"| {name} | {'failed: ' + extra if size is None else f'{size:,}'} | "
                     f"{'-' if size is None else extra or '-'} |")
    lines += ["", "asyncio on this binary (each case in its own process, bytes held over `import gc, socket, sys`):",
              "", "| case | bytes |", "|---|---|"]
    lines += [f"| {k} | {v:,} |" for k, v in res["asyncio"].items()]
    runs = res.get("runs", 3)
    lines += ["", f"Smallest heap: bisection in 1 KiB steps, then {runs} runs at the edge (the edge moves up while one",
              f"fails), then {runs} runs 1 KiB under it (--quick: 1). Tries (KiB, + serves, - fails):"]
    for s in setups:
        tries = res["small"][s]["tries"]
        fails = [f"{k} KiB: {why[:120]}" for k, ok, why in tries if not ok]
        lines.append(f"- {s}: " + " ".join(f"{k}{'+' if ok else '-'}" for k, ok, _ in tries)
                     + (f"; the last failure, {fails[-1]}" if fails else ""))
    return "\n".join(lines)


def frozen(quick=False):
    """The section: the binary from --micropython ($MICROS_MICROPYTHON); skipped without one."""
    import os

    from microsctl.run import MICROPYTHON_ENV

    if not os.environ.get(MICROPYTHON_ENV):
        raise Skipped("no binary given: build one with shared/tools/unix-frozen.sh and run "
                      "'invoke bench --only frozen --micropython PATH' (CI cannot build MicroPython)")
    exe = micropython()
    if frozen_core(exe) is None:
        raise Skipped(f"{exe} has no micrOS frozen in: build one with shared/tools/unix-frozen.sh")
    src = os.environ.get(ORIGINAL_ENV)
    if src:  # the original v0.4 on a binary like this one (microsctl/bench/original.py)
        from microsctl.bench import original

        original.tree_of(exe)  # refused now, not after a minute of measuring
    res = measure(exe, quick=quick)
    if src:
        res["original"] = original.measure(exe, original.source(src), runs=res["runs"])
    return f"frozen-{res['bits']}", report(res)
