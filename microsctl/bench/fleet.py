"""`invoke bench --only fleet`: status of a 50-node virtual LAN and a /24 scan on loopback."""
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from microsctl import ROOT
from microsctl.fleet import cache as devcache
from microsctl.fleet import scan, simfleet, status
from microsctl.node.sim import free_port

NODES = 50
TARGET_S = 2.0


def _serial(targets):
    """The same questions one node after another: what the parallel status saves."""

    async def go():
        return [await status.node_status(t) for t in targets]

    return asyncio.run(go())


def _timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fleet(quick=False):
    rounds = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="micros-bench-fleet-") as tmp:
        tmp = Path(tmp)
        port = free_port()
        env = dict(os.environ, MICROS_DATA=str(tmp / "data"))
        os.environ["MICROS_DATA"] = env["MICROS_DATA"]
        t0 = time.perf_counter()
        simfleet.start(NODES, port, root=tmp / "sim", show_progress=False, timeout=300)
        boot = time.perf_counter() - t0
        try:
            c = devcache.Cache()
            found = scan.scan("127.0.0.0/24", port=port, mdns_timeout=0, cache=c, show=False)
            assert len(found) == NODES, f"scan found {len(found)} of {NODES} nodes"
            scan_s = _timed(lambda: scan.scan("127.0.0.0/24", port=port, mdns_timeout=0, show=False), rounds)
            rows = status.status(all_=True)
            online = sum(r["status"] == "online" for r in rows)
            assert online == NODES, f"{online} of {NODES} nodes online"
            par = _timed(lambda: status.status(all_=True), rounds)
            targets = status.targets(all_=True)
            ser = _timed(lambda: _serial(targets), max(1, rounds // 2))
            argv = [sys.executable, "-m", "invoke", "status", "--all"]
            cli = _timed(lambda: subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, check=True), rounds)
        finally:
            simfleet.stop(tmp / "sim")
            os.environ.pop("MICROS_DATA", None)
    med = statistics.median
    verdict = "meets" if med(cli) < TARGET_S else "MISSES"
    return f"""{NODES} virtual nodes (`invoke fleet-sim --count {NODES}`: real micrOS on the MicroPython unix port,
128 KiB heap each, on 127.0.0.2-127.0.0.{NODES + 1}, one port), booted in {boot:.1f} s on this
{os.cpu_count()}-core machine. Median of {rounds} runs (best in brackets).

| what | wall time |
|---|---|
| `invoke status --all`, the whole command (Python, invoke, table) | **{med(cli):.2f} s** ({min(cli):.2f}) |
| status of {NODES} nodes in parallel (`status.status`, one connection a node: `hello`, `system info >json`) | {med(par) * 1000:.0f} ms ({min(par) * 1000:.0f}) |
| the same {NODES} nodes one after another | {med(ser) * 1000:.0f} ms ({min(ser) * 1000:.0f}) |
| scan of 127.0.0.0/24 (254 addresses, {NODES} nodes answer `hello`; mDNS off) | {med(scan_s) * 1000:.0f} ms ({min(scan_s) * 1000:.0f}) |

Target: status of {NODES} nodes under {TARGET_S:.0f} s: **{verdict}**. Parallel vs one after another:
{med(ser) / med(par):.1f} x faster. A scan with mDNS on listens 1.5 s more (`--mdns 0` skips it).
Loopback refuses a closed port at once; on a real LAN an address without a host costs the
`--timeout` (0.5 s), {scan.CONCURRENCY} addresses at a time.
"""
