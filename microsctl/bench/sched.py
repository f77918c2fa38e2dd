"""What the scheduler costs the shell: one node with everything armed (timer callback
every 100 ms, cron, external IRQ, heartbeat LED) against one with scheduling off,
measured in alternating rounds of the same run."""
import statistics
import tempfile
import time

from microsctl.bench.shell import measure, pct
from microsctl.node.sim import free_port
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode

HEAP = "128k"  # all armed does not fit the 64 KiB of the shell section on the 64-bit sim
COMMAND = "hello"  # the cheapest command: the scheduler's share shows most
OFF = ["pled=False"]
ON = [
    "pled=True",
    "timirq=True",
    "timirqseq=100",
    "timirqcbf=system time",
    "cron=True",
    "crontasks=*:*:*:*!system time;*:*:*:0-29!system time;*:8:30:0!system memfree",
    "extirq=True",
    "extirqcbf=system time",
]


def _row(name, runs):
    lat = [x for r in runs for x in r[0]]
    cps = [r[1] for r in runs]
    return (f"| {name} | {statistics.median(lat) * 1e3:.3f} | {pct(lat, 99) * 1e3:.3f} "
            f"| {statistics.median(cps):.0f} | {max(cps):.0f} |")


def _cpu_s(pid):
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    import os

    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(nodes, seconds):
    """Share of one CPU each node uses while no client talks to it."""
    t0 = time.monotonic()
    c0 = [_cpu_s(n.proc.pid) for n in nodes]
    time.sleep(seconds)
    dt = time.monotonic() - t0
    return [(_cpu_s(n.proc.pid) - c) / dt for n, c in zip(nodes, c0)]


def sched(quick=False):
    n = 1000 if quick else 5000
    rounds = 3 if quick else 9
    with tempfile.TemporaryDirectory() as tmp:
        off = SimNode("off", root=tmp, heap=HEAP)
        on = SimNode("on", root=tmp, heap=HEAP)
        off.prepare("default", OFF, port=free_port())
        on.prepare("default", ON, port=free_port())
        try:
            off.start()
            on.start()
            res = {"off": [], "on": []}
            cpu = {"off": 0.0, "on": 0.0}
            for i in range(rounds):  # alternate, and swap who goes first, against drift
                for name in (("off", "on") if i % 2 == 0 else ("on", "off")):
                    node = off if name == "off" else on
                    c0 = _cpu_s(node.proc.pid)
                    res[name].append(measure(node.port, n, COMMAND))
                    cpu[name] += _cpu_s(node.proc.pid) - c0
            cpu_off, cpu_on = idle_cpu([off, on], 2 if quick else 5)
            with Shell(on.port) as sh:
                state = sh.cmd("sched status")
        finally:
            on.stop()
            off.stop()
    med = {k: statistics.median(r[1] for r in v) for k, v in res.items()}
    best = {k: max(r[1] for r in v) for k, v in res.items()}
    ratio = med["on"] / med["off"]
    ratio_best = best["on"] / best["off"]
    # node CPU time per command (warm-up round trips included, the same on both):
    # what a command costs the node itself, blurred far less by a busy machine
    # than wall time; the on-node's share includes its scheduler's work meanwhile
    per = {k: cpu[k] / (rounds * (n + max(5, n // 20))) * 1e6 for k in cpu}
    ratio_cpu = per["off"] / per["on"]
    cost = (1 - ratio_cpu) * 100
    lat = {k: [x for r in v for x in r[0]] for k, v in res.items()}
    p99 = pct(lat["on"], 99) / pct(lat["off"], 99)
    verdict = "meets" if cost <= 10 else "misses"
    return "\n".join([
        f"`{COMMAND}` over loopback, {rounds} alternating rounds of {n} sequential round trips against",
        f"two virtual nodes (MicroPython unix port, {HEAP[:-1]} KiB heap) in the same run:",
        "scheduling off, and scheduling on with the timer callback (`system time`) every 100 ms,",
        "cron armed with 3 tasks (one fires every second, one 30 s a minute), the external IRQ",
        "armed and the heartbeat LED blinking.",
        "",
        "| node | p50 ms | p99 ms | commands/s, median round | commands/s, best round |",
        "|---|---|---|---|---|",
        _row("scheduling off", res["off"]),
        _row("scheduling on", res["on"]),
        "",
        f"- node CPU per command: off {per['off']:.1f} us, on {per['on']:.1f} us: the shell's throughput "
        f"with scheduling on is **{ratio_cpu:.3f}** x off, a cost of {cost:.1f} % (target <= 10 %: {verdict})",
        f"- wall-clock throughput with scheduling on: {ratio:.3f} x off (median rounds; best rounds "
        f"{ratio_best:.3f}); the loopback client and the machine's load blur it",
        f"- p99 with scheduling on: {p99:.2f} x off",
        f"- CPU while idle: off {cpu_off * 100:.2f} %, on {cpu_on * 100:.2f} % of one core: the scheduler's",
        "  own work, a bound on what it can take from the shell that the machine's noise does not blur",
        "",
        "State of the armed node at the end (`sched status`):",
        "",
        "```",
        state,
        "```",
    ])
