"""`invoke fleet-sim`: a virtual LAN of nodes on loopback, in the background.

Node i is `fleetNN` on 127.0.0.(1+i), all on one port, each joined to the virtual
WiFi `simlan` (so it is in STA mode, its address is its static IP and it has an RSSI),
each with its own filesystem under build/sim/fleetNN/. One supervisor process
(`python -m microsctl.fleet.simfleet STATE`, in its own session) runs them and restarts
a node that reboots; `fleet.json` beside them names its pid and the nodes, and
`invoke fleet-sim --stop` ends it (SIGTERM: it stops its nodes, then itself).
"""
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from microsctl import MicrosError
from microsctl.node.sim import SIM_ROOT, SimNode, check_port_free
from microsctl.run import show

STATE = "fleet.json"
FIRST = "127.0.0.2"
SSID = "simlan"


def state_path(root=SIM_ROOT):
    return Path(root) / "fleet" / STATE


def plan(count, port, first=FIRST, profile="default", sets=()):
    """The nodes of a fleet: [{name, host, port, sets}]; `sets` (KEY=VALUE) go to every node."""
    start = ipaddress.IPv4Address(first)
    nodes = []
    for i in range(count):
        host = start + i
        if not host.is_loopback:
            raise MicrosError(f"{count} nodes from {first} leave 127.0.0.0/8; start lower or run fewer")
        name = f"fleet{i + 1:02d}"
        nodes.append({"name": name, "host": str(host), "port": port, "profile": profile,
                      "sets": [*sets, f"devfid={name}", f"staessid={SSID}"]})
    return nodes


def _alive(pid):
    """pid runs and is a fleet supervisor (a reused pid is left alone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"microsctl.fleet.simfleet" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def read_state(root=SIM_ROOT):
    path = state_path(root)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def start(count, port=9008, first=FIRST, profile="default", heap="128k", root=SIM_ROOT, fresh=False,
          timeout=120, show_progress=True, sets=()):
    """Prepare the nodes, start the supervisor, wait until every shell answers; returns the state.
    `sets`: KEY=VALUE settings for every node (e.g. authkey=... for file updates)."""
    old = read_state(root)
    if old and _alive(old["pid"]):
        raise MicrosError(f"a virtual fleet of {len(old['nodes'])} nodes already runs (pid {old['pid']}); "
                          "stop it first with: invoke fleet-sim --stop")
    nodes = plan(count, port, first, profile, sets)
    for n in nodes:
        check_port_free(port, n["host"])
    for n in nodes:
        SimNode(n["name"], root=root, heap=heap, host=n["host"]).prepare(profile, n["sets"], port, fresh)
    path = state_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.with_name("fleet.log")
    argv = [sys.executable, "-m", "microsctl.fleet.simfleet", str(path)]
    state = {"pid": None, "root": str(root), "heap": heap, "log": str(log), "nodes": nodes}
    _write(path, state)
    show(argv)
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    state["pid"] = proc.pid
    _write(path, state)
    try:
        _wait_up(proc, nodes, timeout, log, show_progress)
    except BaseException:
        stop(root)
        raise
    return state


def _write(path, state):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def _wait_up(proc, nodes, timeout, log, show_progress):
    import socket

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    waiting = list(nodes)
    end = time.monotonic() + timeout
    with Progress(TextColumn("[fleet-sim] booting"), BarColumn(), MofNCompleteColumn(),
                  console=Console(stderr=True), disable=not show_progress) as bar:
        task = bar.add_task("boot", total=len(nodes))
        while waiting:
            if proc.poll() is not None:
                raise MicrosError(f"the fleet supervisor exited with status {proc.returncode}; see {log}")
            if time.monotonic() > end:
                names = ", ".join(n["name"] for n in waiting[:5])
                raise MicrosError(f"{len(waiting)} virtual nodes did not start their shell ({names}); see {log}")
            for n in list(waiting):
                try:
                    socket.create_connection((n["host"], n["port"]), 0.2).close()
                except OSError:
                    continue
                waiting.remove(n)
                bar.advance(task)
            time.sleep(0.05)


def stop(root=SIM_ROOT, timeout=15):
    """Stop the running fleet; returns how many nodes it had (0: none ran)."""
    path = state_path(root)
    state = read_state(root)
    if not state:
        return 0
    pid = state.get("pid")
    if pid and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
        if _alive(pid):
            raise MicrosError(f"the fleet supervisor (pid {pid}) did not stop within {timeout} s; "
                              f"see {state.get('log')}")
    path.unlink(missing_ok=True)
    return len(state["nodes"])


# -- the supervisor ----------------------------------------------------------------------

def supervise(path):
    state = json.loads(Path(path).read_text())
    sims = [SimNode(n["name"], root=state["root"], heap=state["heap"], host=n["host"]) for n in state["nodes"]]
    code = sims[0].code_dir() if sims else None  # compiled once, not by 50 threads at once
    for s in sims:
        s.code = code
        s.env()  # compiles the board's own modules once
    done = threading.Event()

    def term(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    for s in sims:
        s.start(wait=False)
    print(f"[fleet-sim] {len(sims)} nodes started", flush=True)
    while not done.wait(0.5):
        pass
    for s in sims:  # all told first, so they stop together
        s._stop = True
        if s.proc and s.proc.poll() is None:
            s.proc.terminate()
    for s in sims:
        s.stop()
    print("[fleet-sim] stopped", flush=True)


if __name__ == "__main__":
    supervise(sys.argv[1])
