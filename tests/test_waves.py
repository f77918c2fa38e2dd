"""`invoke ota --all` in waves (microsctl/fleet/waves.py) on a virtual fleet (`invoke fleet-sim`):
real micrOS nodes on the MicroPython unix port, one shell port, one loopback address each.

The canary goes alone, then the rest in parallel waves; a failed node stops the next wave;
the table names every node's version before and after. Concurrency is shown by what the
nodes hold, not by timing: every node of a wave has its update staged (.ota/ on its
filesystem) while the others of the wave are still mid-transfer (a barrier the sequential
runner could never pass).
"""
import hashlib
import os
import subprocess
import threading

import pytest

from microsctl import ROOT, MicrosError
from microsctl.fleet import simfleet, waves
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode
from tests.conftest import free_port
from tests.test_cli import INVOKE

KEY = "wave-shell-key-1"
NOTES = bytes(range(256)) * 12  # 3072 bytes: six data lines of the node's 512-byte chunk


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """fleet(count) -> [(name, host, port)] of a running virtual fleet, stopped at teardown."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)  # file updates need an authenticated shell
    started = []

    def make(count, first):
        st = simfleet.start(count, free_port(), first=first, root=tmp_path / "sim", show_progress=False,
                            sets=[f"authkey={KEY}"])
        started.append(st)
        return [(n["name"], n["host"], n["port"]) for n in st["nodes"]]

    yield make
    if started:
        simfleet.stop(tmp_path / "sim")


@pytest.fixture
def files(tmp_path):
    lm = tmp_path / "src" / "LM_wave.py"
    lm.parent.mkdir()
    lm.write_text("def hello():\n    return 'wave LM'\n")
    notes = tmp_path / "src" / "notes.txt"
    notes.write_bytes(NOTES)
    return [str(lm), str(notes)]


def _fs(tmp_path, name):
    return SimNode(name, root=tmp_path / "sim").fs


def _version(host, port):
    with Shell(port, host) as sh:
        return sh.cmd("version")


def _has_notes(host, port):
    with Shell(port, host) as sh:
        return sh.cmd("ota sum notes.txt") == hashlib.sha256(NOTES).hexdigest()


def test_plan_is_a_canary_then_waves_of_n():
    t = [(f"n{i}", "127.0.0.1", 9008) for i in range(8)]
    assert [[n for n, _, _ in w] for w in waves.plan(t, 3)] == [["n0"], ["n1", "n2", "n3"], ["n4", "n5", "n6"], ["n7"]]
    assert waves.plan(t[:1], 3) == [t[:1]] and waves.plan([], 3) == []
    with pytest.raises(MicrosError, match="--wave takes"):
        waves.plan(t, 0)


def test_a_wave_updates_its_nodes_in_parallel(fleet, files, tmp_path):
    """Canary fleet01 alone, then fleet02..04 as one wave of 3: each of the three is held at its
    first data line until all three are there, and each has its update staged then."""
    targets = fleet(4, "127.0.0.40")
    before = {n: _version(h, p) for n, h, p in targets}
    wave = [n for n, _, _ in targets[1:]]
    barrier = threading.Barrier(len(wave), timeout=60)
    staged, canary_alone = {}, []
    lock = threading.Lock()

    def on_progress(name, done, total):
        if name == "fleet01":
            # the canary's transfer: no other node has begun
            canary_alone.append(not any((_fs(tmp_path, n) / ".ota").exists() for n in wave))
            return
        if name in staged:
            return
        with lock:
            staged[name] = None
        barrier.wait()  # a sequential runner breaks the barrier here (BrokenBarrierError)
        with lock:
            staged[name] = sorted(n for n in wave if (_fs(tmp_path, n) / ".ota").exists())
        barrier.wait()  # nobody commits (and clears its .ota/) before all have looked

    done, ok = waves.ota_all(targets, files, wave=3, on_progress=on_progress)
    assert ok
    assert canary_alone and all(canary_alone)
    assert staged == {n: wave for n in wave}  # every node of the wave saw all three mid-transfer
    assert [(o.name, o.wave, o.state) for o in done] == [
        ("fleet01", 0, "updated"), ("fleet02", 1, "updated"), ("fleet03", 1, "updated"), ("fleet04", 1, "updated")]
    for o, (name, host, port) in zip(done, targets):
        assert (o.before, o.after) == (before[name], _version(host, port))
        assert _has_notes(host, port)
        with Shell(port, host) as sh:
            assert sh.cmd("wave hello") == "wave LM"
    rows = [o.row() for o in done]
    assert rows[0][2:] == ("canary", before["fleet01"], before["fleet01"], "canary, updated")
    assert rows[3][2:] == ("1", before["fleet04"], before["fleet04"], "updated")


def test_a_failure_in_wave_1_stops_wave_2(fleet, files):
    """fleet03 (wave 1) is busy with another client's update and refuses: fleet02 of the same
    wave finishes, wave 2 (fleet04, fleet05) never starts and keeps its old files."""
    targets = fleet(5, "127.0.0.50")
    addr = {n: (h, p) for n, h, p in targets}
    with Shell(addr["fleet03"][1], addr["fleet03"][0]) as other:
        assert other.cmd("ota begin").startswith("ota ready")
        done, ok = waves.ota_all(targets, files, wave=2)
        other.cmd("ota abort")
    assert not ok
    assert [(o.name, o.wave, o.state) for o in done] == [
        ("fleet01", 0, "updated"), ("fleet02", 1, "updated"), ("fleet03", 1, "failed"),
        ("fleet04", 2, "not tried"), ("fleet05", 2, "not tried")]
    assert "another client is updating this node" in done[2].error
    assert [_has_notes(*addr[n]) for n in ("fleet01", "fleet02", "fleet03", "fleet04", "fleet05")] == [
        True, True, False, False, False]
    assert done[3].before == done[3].after == "-"  # never asked: not touched at all
    line = waves.summary(done)
    assert line == ("the update stopped at the first failure (fleet03): updated fleet01, fleet02; not tried "
                    "fleet04, fleet05; see the table, fix the failed node and run again")


def test_a_failed_canary_stops_everything(fleet, files, tmp_path):
    """The canary refuses (busy): no other node is touched."""
    targets = fleet(3, "127.0.0.60")
    name, host, port = targets[0]
    with Shell(port, host) as other:
        other.cmd("ota begin")
        done, ok = waves.ota_all(targets, files, wave=2)
        other.cmd("ota abort")
    assert not ok and [o.state for o in done] == ["failed", "not tried", "not tried"]
    assert not any(_has_notes(h, p) for _, h, p in targets)


def test_ota_all_task_prints_the_table(fleet, files, tmp_path):
    """`invoke ota --all` as a user runs it, the nodes found in the device cache (invoke scan)."""
    targets = fleet(3, "127.0.0.70")
    env = {**os.environ, "MICROS_DATA": str(tmp_path / "data")}  # MICROS_AUTHKEY set by the fixture
    port = targets[0][2]
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"{h}\n" for _, h, _ in targets))
    scan = subprocess.run(INVOKE + ["scan", "--hosts", str(hosts), "--port", str(port), "--mdns", "0"],
                          capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert scan.returncode == 0, scan.stderr
    res = subprocess.run(INVOKE + ["ota", "--all", "--wave", "2", "--files", files[1]], capture_output=True,
                         text=True, env=env, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["node", "address", "wave", "version", "before", "after", "result"]
    version = _version(targets[0][1], port)
    body = {ln.split()[0]: ln.split() for ln in lines[1:] if ln.strip()}
    assert set(body) == {"fleet01", "fleet02", "fleet03"}
    assert body["fleet01"][2:] == ["canary", version, version, "canary,", "updated"]
    assert body["fleet03"][2:] == ["1", version, version, "updated"]


def test_wave_without_all_is_one_line():
    res = subprocess.run(INVOKE + ["ota", "--wave", "3", "--files", "x.py"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "error: --wave sizes the waves of --all: give --all too, or leave --wave out"]
