"""The original micrOS v0.4 measured like for like with ours (issue 11): frozen into a unix-port
binary of the same kind (the same MicroPython tree, word size and build options, the same
frozen stand-ins of ports/unix), measured the same way (`gc.collect()` then
`gc.mem_alloc()` inside the node with its shell listening; the smallest heap that boots and
serves 3 clients `system memfree` and `help`: its clients one at a time, as its server serves them).

The upstream tree is the user's, given by path (`--original-src`: a checkout or `git archive`
of BxNxM/micrOS at v0.4.0-0, or its MicrOS/ folder); nothing of it is kept in this repository.
The section `frozen` measures it when given one (`invoke bench --only frozen --micropython BIN
--original-src DIR`): the original's binary is built in the MicroPython tree BIN was built in
(BIN's ports/unix/<build>/micropython), as build-original-<bits>.

How the original runs on the virtual board (what differs from its own boot.py):
- main.py does what its boot.py does (gc.enable(), micrOSloader.main()) but `esp.osdebug(None)`,
  which only silences the SDK's UART log (no heap);
- what it takes from an ESP8266's firmware that the unix port answers otherwise, as proxies in
  sys.modules (PROBE), whose own bytes are taken off with the probe's: `sys.platform` reads
  'esp8266' (its LogicalPins and Hooks choose the pins and CPU speed by it),
  `micropython.alloc_emergency_exception_buf` holds its buffer in the heap (py/objexcept.c),
  sockets take and give (host, port) tuples and have sendall() (esp8266/modlwip.c; one wrapper
  object per socket, counted against the original);
- its timer (machine.Timer) is the stand-in's: without an asyncio loop, a thread that schedules
  the callback (micropython.schedule), as the boards' timer interrupt does;
- its `help` lists the Load Modules it finds on the filesystem: frozen ones are not there, so
  it lists the built-in commands only.
"""
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from microsctl import ROOT, MicrosError
from microsctl.bench import frozen as fz
from microsctl.node.sim import SimNode, free_port
from microsctl.run import show

ENV = "MICROS_ORIGINAL_SRC"
# the original's modules, all frozen but boot.py (the board's boot script: main.py stands in)
CORE = ("micrOSloader", "micrOS", "ConfigHandler", "Network", "SocketServer", "InterpreterShell",
        "InterpreterCore", "InterruptHandler", "Scheduler", "Hooks", "LogicalPins", "LM_system")
WIFI = ("simnet", "simpass")
LISTENING = "Socket now listening"
# the probe: a thread (the original's server blocks in accept(), no event loop runs), same
# output as frozen.PROBE; "sched" is whether its timer is armed (the stand-in Timer loaded)
PROBE = """import _thread, gc, micropython, os, sys, time
# What the original takes from an ESP8266's firmware that the unix port answers otherwise:
class _Sys:  # sys.platform 'esp8266' (the original picks its pins and CPU speed by it)
    platform = "esp8266"
    def __init__(self, s):
        self._s = s
    def __getattr__(self, n):
        return getattr(self._s, n)
sys.modules["sys"] = _Sys(sys)
class _Mpy(_Sys):  # alloc_emergency_exception_buf: the buffer held in the heap, as py/objexcept.c does
    def alloc_emergency_exception_buf(self, n):
        self.buf = bytearray(n)
sys.modules["micropython"] = _Mpy(micropython)
import socket as _so
class _Sock:  # (host, port) addresses and sendall(), as lwIP's socket has them (esp8266/modlwip.c)
    def __init__(self, *a, s=None):
        self._s = s or _so.socket(*a)
    def bind(self, a):
        self._s.bind(_so.getaddrinfo(a[0] or "0.0.0.0", a[1])[0][-1])
    def accept(self):
        c, a = self._s.accept()
        return _Sock(s=c), ("%d.%d.%d.%d" % tuple(a[4:8]), a[2] << 8 | a[3])
    def sendall(self, b):
        m = memoryview(b)
        while m:
            m = m[self._s.send(m):]
    def __getattr__(self, n):
        return getattr(self._s, n)
class _SoMod(_Sys):
    socket = _Sock
sys.modules["socket"] = _SoMod(_so)
"""
PROBE_TASK = """
def _run():
    while True:
        time.sleep_ms(50)
        try:
            os.remove("probe.go")
        except OSError:
            continue
        gc.collect()
        a = gc.mem_alloc()
        f = gc.mem_free()
        b = getattr(sys.modules.get("machine"), "HEAP_BASE", 0)
        print("heapprobe:", a, f, int("machmore" in sys.modules), b)
        print("heapmods:", " ".join(sorted(sys.modules)))
        micropython.mem_info()
        micropython.qstr_info()
        print("heapprobe end")
_thread.start_new_thread(_run, ())
"""
MAIN = """import gc
gc.collect()
_b = gc.mem_alloc()
import heapprobe
gc.collect()
print("heapprobe own:", gc.mem_alloc() - _b)
del _b
gc.enable()  # the original's boot.py, but esp.osdebug(None)
from micrOSloader import main
main()
"""
SETUPS = (
    ("off", {}),
    ("on", {"timirq": True, "timirqseq": 3000, "cron": True, "crontasks": "*:*:*:0!system gcollect",
            "timirqcbf": "system heartbeat"}),
)


def source(path):
    """The original's MicrOS/ folder inside the tree given by the user."""
    p = Path(path).expanduser()
    for d in (p / "MicrOS", p):
        if all((d / f"{m}.py").is_file() for m in CORE):
            return d.resolve()
    raise MicrosError(f"--original-src {path}: no micrOS v0.4 there (MicrOS/micrOS.py, ...): give a checkout of "
                      "BxNxM/micrOS at v0.4.0-0 (git archive v0.4.0-0 | tar -x -C DIR)")


def manifest_text(original):
    """What the original's binary freezes: the port's standard variant, the same stand-ins as
    ours (ports/unix/manifest.py), the original's modules top-level (as on its boards)."""
    files = sorted(p.name for p in Path(original).glob("*.py") if p.name != "boot.py")
    return ('include("$(PORT_DIR)/variants/standard/manifest.py")\n'
            'include("$(MICROS_DIR)/ports/unix/manifest.py")\n'
            + "".join(f'module("{f}", base_path="$(ORIGINAL_DIR)", opt=1)\n' for f in files))


def tree_of(exe):
    """The MicroPython tree a unix-port binary was built in (TREE/ports/unix/<build>/micropython)."""
    port = Path(exe).resolve().parent.parent
    if (port / "Makefile").is_file() and port.name == "unix" and (port.parent.parent / "py").is_dir():
        return port.parent.parent
    raise MicrosError(f"{exe} was not built in a MicroPython tree (TREE/ports/unix/BUILD/micropython): "
                      "build it with shared/tools/unix-frozen.sh")


def build(exe, original, bits):
    """The original frozen into a binary like exe (its tree, word size, the same make options as
    shared/tools/unix-frozen.sh); returns the binary's path. make rebuilds only what changed."""
    tree = tree_of(exe)
    out = f"build-original-{bits}"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(manifest_text(original))
        man = f.name
    argv = ["make", "-C", str(tree / "ports" / "unix"), "-j2", "VARIANT=standard", "MICROPY_PY_BTREE=0",
            "MICROPY_PY_SSL=0", "MICROPY_PY_FFI=0"] + (["MICROPY_FORCE_32BIT=1"] if bits == 32 else []) + [
            f"BUILD={out}", f"FROZEN_MANIFEST={man}", f"MICROPY_MANIFEST_MICROS_DIR={ROOT}",
            f"MICROPY_MANIFEST_ORIGINAL_DIR={original}"]
    env = dict(os.environ)
    if bits == 32:
        env.setdefault("PKG_CONFIG_PATH", "/usr/lib/i386-linux-gnu/pkgconfig")
    show(argv)
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    finally:
        os.unlink(man)
    if proc.returncode:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise MicrosError(f"building the original's binary failed: {tail}")
    return str(tree / "ports" / "unix" / out / "micropython")


def config(setup, port):
    cfg = {"staessid": WIFI[0], "stapwd": WIFI[1], "devfid": "node01", "socport": port}
    cfg.update(setup[1])
    return cfg


class Node(fz.Node):
    """One node running the original frozen into exe (its own default config, with the setup's
    keys), with the probe thread unless probe=False. frozen=False (tests, on a binary without
    it): the original's .py files from `src`, compiled on the node."""

    listening = LISTENING

    def __init__(self, tmp, exe, heap, setup, frozen=True, probe=True, src=None):
        self.node = SimNode(f"orig-{setup[0]}-{heap}-{next(fz._NODES)}", root=tmp, heap=heap, micropython=exe)
        env = self.node.env  # its network in reach, so its scan finds it (ports/unix/network.py)
        self.node.env = lambda: {**env(), "MICROS_SIM_WIFI": f"{WIFI[0]}:{WIFI[1]}"}
        nocore = self.node.dir / "nocore"  # no `micros` package: simboot runs main.py as it is
        nocore.mkdir(parents=True)
        self.node.code = nocore if frozen else Path(src)
        self.node.fs.mkdir(parents=True)
        (self.node.fs / "node_config.json").write_text(json.dumps(config(setup, free_port())))
        # the ESP8266 firmware's answers (always), and the probe (unless probe=False)
        (self.node.fs / "heapprobe.py").write_text(PROBE + (PROBE_TASK if probe else ""))
        (self.node.fs / "main.py").write_text(MAIN)
        self.probe = probe
        self.own = None
        self.seen = 0


def after_boot(tmp, exe, heap, setup, frozen=True, src=None):
    with Node(tmp, exe, heap, setup, frozen, src=src) as n:
        n.boot(timeout=15)
        time.sleep(fz.SETTLE_S)
        return n.measure()


COMMANDS = (("system memfree", "CPU[Hz]"), ("help", "[EXEC] Command mode"))


class Client:
    """A shell client for the original's prompt ("node01 $  ": its prompt and a space)."""

    def __init__(self, port, timeout=8):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.read()

    def read(self):
        data = b""
        while not data.endswith(b" $  "):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise MicrosError(f"the node closed the connection after {data[-60:]!r}")
            data += chunk
        return data.decode(errors="replace")

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\n")
        return self.read()

    def close(self):
        try:
            self.sock.sendall(b"exit\n")  # its server accepts the next client only then
        except OSError:
            pass
        self.sock.close()


def serves(tmp, exe, heap, setup, frozen=True, clients=3, src=None):
    """Does the original boot at `heap` and serve `clients`, one after the other (its server
    serves one at a time), each running COMMANDS? (ok, why not)"""
    with Node(tmp, exe, heap, setup, frozen, probe=False, src=src) as n:
        try:
            n.boot(timeout=15)
        except MicrosError as err:
            return False, f"boot: {err}"
        for i in range(clients):
            try:
                sh = Client(n.port)
                try:
                    for cmd, want in COMMANDS:
                        reply = sh.cmd(cmd)
                        if want not in reply or "memory allocation failed" in reply or "[HA]" in reply:
                            return False, f"client {i + 1}: {cmd}: {reply[:60]!r}"
                finally:
                    sh.close()
            except (MicrosError, OSError) as err:
                return False, f"client {i + 1}: {err}"
            time.sleep(0.3)
        log = n._log()
        bad = re.findall(r"[^\n]*(?:recovery|Traceback|EXEC-ERROR)[^\n]*", log)
        return (False, "the node logged " + bad[0][:80]) if bad else (True, "")


def measure(exe, original, heaps=fz.HEAPS, runs=3, bisect=(8, 64), progress=print):
    """The original's figures on a binary like exe: {"exe", "boot": {(setup, heap): ...}, "small": {setup: ...}}."""
    _, bits, _ = fz.binary_facts(exe)
    progress(f"[bench] original: building micrOS v0.4 from {original} into a {bits}-bit binary like {exe}")
    oexe = build(exe, original, bits)
    res = {"exe": oexe, "src": str(original), "boot": {}, "small": {}, "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        for setup in SETUPS:
            for h in heaps:
                progress(f"[bench] original: after boot, timer + cron {setup[0]}, {h}")
                res["boot"][(setup[0], h)] = after_boot(tmp, oexe, h, setup)
            res["small"][setup[0]] = fz.smallest_heap(tmp, oexe, setup, *bisect, runs=runs, progress=progress,
                                                      serves_at=serves, label="original")
    return res


def report(res, ours):
    """The like-for-like table: ours (this run's frozen figures) and the original, same binary kind."""
    heap = fz.GOAL_HEAP
    lines = ["", f"Like for like: the original micrOS v0.4 (`{Path(res['src']).parent.name}/{Path(res['src']).name}`) "
             f"frozen into `{Path(res['exe']).parent.name}/micropython`,",
             "built like this binary (same MicroPython tree, word size, options and frozen stand-ins), measured",
             "the same way (its clients served one at a time, as its server does):", "",
             f"| at {heap} | in use | free | smallest heap, 3 clients |", "|---|---|---|---|"]
    for s, name in (("off", "scheduling off"), ("on", "timer + cron armed")):
        o = res["boot"].get((s, heap))
        m = ours["boot"].get((s, heap))
        if m:
            lines.append(f"| ours, {name} | {m['used']:,} B | {m['free']:,} B | {fz._small(ours['small'][s])} |")
        if o:
            lines.append(f"| original v0.4, {name} | {o['used']:,} B | {o['free']:,} B | {fz._small(res['small'][s])} |")
    lines += ["", "The original's smallest heap, tries (KiB, + serves, - fails):"]
    for s, small in res["small"].items():
        fails = [f"{k} KiB: {why[:100]}" for k, ok, why in small["tries"] if not ok]
        lines.append(f"- {s}: " + " ".join(f"{k}{'+' if ok else '-'}" for k, ok, _ in small["tries"])
                     + (f"; the last failure, {fails[-1]}" if fails else ""))
    return lines
