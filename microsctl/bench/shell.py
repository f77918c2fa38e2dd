"""Shell round trips against a bare asyncio echo server, and the node's heap."""
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from microsctl import BUILD, MicrosError
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port, micropython

# The baseline: the least a MicroPython asyncio server can do per line, on the same VM.
ECHO_SERVER = """
import asyncio, sys
async def serve(r, w):
    w.write(b"echo $ ")
    await w.drain()
    while True:
        line = await r.readline()
        if not line:
            break
        w.write(line + b"echo $ ")
        await w.drain()
    w.close()
async def main(port):
    await asyncio.start_server(serve, "127.0.0.1", port)
    while True:
        await asyncio.sleep(3600)
asyncio.run(main(int(sys.argv[1])))
"""




def measure(port, n, command="system memfree"):
    """n sequential round trips of one command: (latencies in s, commands per second)."""
    lat = []
    with Shell(port) as sh:
        for _ in range(max(5, n // 20)):  # warm up: modules imported, buffers grown
            sh.cmd(command)
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            sh.cmd(command)
            lat.append(time.perf_counter() - t)
        total = time.perf_counter() - t0
    return lat, n / total


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# The shell's own loop with every command answered by a constant: what the shell
# costs before any command runs (the core as the virtual board loads it).
LOOP_SERVER = """
import sys, asyncio
sys.path[:] = ["", %(port)r, ".frozen", %(code)r]
from micros import conf, shell
conf.load()
shell._answer = lambda cl, raw: "x"
shell.HOST = "127.0.0.1"
conf._vals[conf._index("socport")] = int(sys.argv[1])
async def main():
    await shell.serve()
    while True:
        await asyncio.sleep(3600)
asyncio.run(main())
"""


class EchoServer:
    """A baseline server on the same MicroPython, in a temporary folder."""

    def __init__(self, heap="64k", script=ECHO_SERVER):
        self.port = free_port()
        self.heap = heap
        self.script = script

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        script = Path(self.tmp.name) / "server.py"
        script.write_text(self.script)
        self.proc = subprocess.Popen([micropython(), "-X", f"heapsize={self.heap}", str(script), str(self.port)],
                                     cwd=self.tmp.name, stdout=subprocess.DEVNULL)
        import socket

        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise MicrosError("the echo baseline server did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(5)
        self.tmp.cleanup()


def compare(node_port, echo_port, n, rounds=3, command="system memfree"):
    """Alternate node and echo runs; the best round of each (least disturbed by the machine)."""
    node, echo = [], []
    for _ in range(rounds):
        node.append(measure(node_port, n, command))
        echo.append(measure(echo_port, n, "x"))
    bn = max(node, key=lambda r: r[1])
    be = max(echo, key=lambda r: r[1])
    return bn, be


def row(name, res):
    lat, cps = res
    return f"| {name} | {statistics.median(lat) * 1e3:.3f} | {pct(lat, 99) * 1e3:.3f} | {cps:.0f} |"


def shell(quick=False):
    n = 200 if quick else 2000
    with tempfile.TemporaryDirectory() as tmp:
        node = SimNode("bench", root=tmp, heap="64k")
        node.prepare("default", port=free_port())
        node.start()
        try:
            with EchoServer() as echo:
                bn, be = compare(node.port, echo.port, n)
                bh, be2 = compare(node.port, echo.port, n, command="hello")
                from microsctl.firmware.compile import compile_package
                from microsctl.node.sim import port_mpy

                loop_src = LOOP_SERVER % {"port": str(port_mpy()), "code": str(compile_package(BUILD / "sim-mpy").parent)}
                with EchoServer(script=loop_src) as loop:
                    bl, be3 = compare(loop.port, echo.port, n, command="x")
        finally:
            node.stop()
    ratio_cps = bn[1] / be[1]
    ratio_p99 = pct(bn[0], 99) / pct(be[0], 99)
    ok_cps = "meets" if ratio_cps >= 0.7 else "misses"
    ok_p99 = "meets" if ratio_p99 <= 2.0 else "misses"
    return "\n".join([
        f"{n} sequential round trips over loopback, best of 3 rounds alternating with a bare",
        "asyncio echo server on the same MicroPython (unix port, 64 KiB heap, default profile).",
        "",
        "| server | p50 ms | p99 ms | commands/s |",
        "|---|---|---|---|",
        row("micrOS shell, `system memfree`", bn),
        row("asyncio echo (baseline)", be),
        row("micrOS shell, `hello`", bh),
        row("asyncio echo (baseline, rerun)", be2),
        row("the shell's loop, constant reply", bl),
        row("asyncio echo (baseline, rerun)", be3),
        "",
        f"- `system memfree` throughput: **{ratio_cps:.2f}** x the echo server (target >= 0.7: {ok_cps})",
        f"- `system memfree` p99: **{ratio_p99:.2f}** x the echo server's p99 (target <= 2: {ok_p99})",
        f"- `hello` throughput: **{bh[1] / be2[1]:.2f}** x the echo server (the shell's own cost, no Load Module)",
        "",
        "The echo server does no work per line; the shell parses the call, looks up the module",
        "and function, and `gc.mem_free()` walks the heap's whole allocation table.",
        "With every command answered by a constant the shell's loop runs at",
        f"**{bl[1] / be3[1]:.2f}** x the echo server: what is left is the command itself.",
    ])


def _node(name, tmp, heap, frozen):
    """A node running the core each column names: frozen, or this tree's as .mpy (never
    left to the environment's default)."""
    if frozen:
        return SimNode(name + "-frozen", root=tmp, heap=heap, frozen=True)
    node = SimNode(name, root=tmp, heap=heap)
    node.code = node.code_dir()
    return node


def boots(heap, tmp, clients=3, frozen=False):
    """Does a node boot (not in safe mode) at this heap and serve `clients` at once?"""
    node = _node(f"h{heap}", tmp, heap, frozen)
    node.prepare("default", port=free_port(), fresh=True)
    try:
        node.start(timeout=5)
        shells = [Shell(node.port, timeout=5) for _ in range(clients)]
        try:
            ok = True
            for sh in shells:
                ok &= sh.cmd("system memfree").startswith("CPU[Hz]")
            ok &= "safemode: False" in shells[0].cmd("system info")
            return ok
        finally:
            for sh in shells:
                sh.close()
    except (MicrosError, OSError):
        return False
    finally:
        node.stop()


def smallest_heap(tmp, lo=8, hi=64, clients=3, frozen=False):
    """Bisect (KiB) the smallest heap at which the node boots and serves `clients`."""
    if not boots(f"{hi}k", tmp, clients, frozen):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if boots(f"{mid}k", tmp, clients, frozen):
            hi = mid
        else:
            lo = mid
    return hi


def after_boot(tmp, heap, command, frozen=False):
    """(free heap the node logged when its shell came up, its reply to command)."""
    import re

    node = _node(f"ab{heap}", tmp, heap, frozen)
    node.prepare("default", port=free_port(), fresh=True)
    node.start()
    try:
        with Shell(node.port) as sh:
            reply = sh.cmd(command)
    finally:
        node.stop()
    log = node.log.read_text()
    want = "frozen" if frozen else "mpy"
    if f"core: {want} " not in log:  # the figures must be of the core they are labelled with
        raise MicrosError(f"the benchmark node did not run the {want} core; see {node.log}")
    free = int(re.search(r"micrOS shell on \S+, (\d+) B heap free", log).group(1))
    return free, reply


def figures(tmp, frozen=False, heap="64k"):
    """The heap figures of one core: free after boot at `heap`, whether `system memfree` then
    answers, the core's share (`sim heap` at 128k, where the measuring module has room to
    load) and the smallest heap serving 3 clients."""
    import json

    free, reply = after_boot(tmp, heap, "system memfree", frozen)
    info = json.loads(after_boot(tmp, "128k", "sim heap >json", frozen)[1])
    return {"free": free, "first": reply.replace("\n", "; "), "base": info["base"],
            "core": info["alloc"] - info["base"], "small": smallest_heap(tmp, hi=128, frozen=frozen)}


def heap(quick=False):
    from microsctl.node.sim import frozen_core

    exe = micropython()
    has_frozen = frozen_core(exe) is not None
    with tempfile.TemporaryDirectory() as tmp:
        cores = [("core as .mpy", figures(tmp))]
        if has_frozen:
            cores.append(("core frozen", figures(tmp, frozen=True)))

    def row(text, fn):
        return f"| {text} | " + " | ".join(str(fn(f)) for _, f in cores) + " |"

    small = lambda f: f["small"] * 1024 if f["small"] else "over 128 KiB"  # noqa: E731
    # the binary: version, object size, and the GC's pool at the 64k the table reads
    probe = "import gc,sys;print('%d.%d.%d' % sys.implementation.version[:3], 64 if sys.maxsize > 1 << 32 else 32, "
    probe += "gc.mem_free() + gc.mem_alloc())"
    ver, bits, pool = subprocess.run([exe, "-X", "heapsize=64k", "-c", probe], capture_output=True, text=True,
                                     timeout=10).stdout.split()
    binary = f"MicroPython {ver} unix port " + ("with micrOS frozen in (invoke build --board unix)" if has_frozen
                                               else "(no micrOS frozen in)")
    lines = [
        f"Virtual board on {binary},",
        f"{bits}-bit objects, default profile (heartbeat LED on); the core as .mpy files on the filesystem"
        + (",\nand the core frozen into the binary (`invoke sim --frozen`)." if has_frozen else "."),
        "",
        "| figure | " + " | ".join(name for name, _ in cores) + " |",
        "|---|" + "---|" * len(cores),
        row("free heap when the shell comes up at `-X heapsize=64k` (boot log)", lambda f: f["free"]),
        row(f"heap in use then, of the GC's {int(pool):,} B", lambda f: int(pool) - f["free"]),
        row("of which the board's shims and the VM's own start-up, before the core (`sim heap` at 128k)",
            lambda f: f["base"]),
        row("of which the micrOS core, booted, with one client and `LM_sim` loaded (`sim heap`: alloc - base)",
            lambda f: f["core"]),
        row("smallest heap that boots and serves 3 clients `system memfree` (bisect, 1 KiB steps)", small),
        "",
    ]
    lines += [f"First command after boot at 64k ({name}), `system memfree`: `{f['first']}`" for name, f in cores]
    lines += [
        "",
        "Anchor: the original micrOS left 7,184 B of 37,952 B free on an ESP8266 (81 % used).",
        f"On the unix port the .mpy bytecode, its qstrs and {bits}-bit objects all sit in the heap,",
        "and what is left at 64k is fragmented; frozen in a firmware (or used in place from",
        "ROMFS) the bytecode stays in flash" + (": the frozen column measures that." if has_frozen else
                                               ": `invoke bench --only heap --micropython PATH` with a binary from "
                                               "`invoke build --board unix` adds the frozen figures."),
    ]
    return "\n".join(lines)
