"""`invoke ota --all --firmware`: firmware OTA (microsctl/node/fwota.py) through the waves of
microsctl/fleet/waves.py, on virtual nodes with the ESP32 OTA layout (microsctl/node/simota.py,
the fixtures of tests/test_fwota.py): the canary first, then parallel waves; a rollback or a
refusal stops the next wave; the table's versions are the cores' before and after."""
import threading

from microsctl.fleet import waves
from microsctl.node import fwota
from microsctl.node.client import Shell
from tests.test_fwota import cores, mk  # noqa: F401 (fixtures)


def _targets(nodes):
    return [(f"n{i}", "127.0.0.1", n.port) for i, n in enumerate(nodes)]


def _running(n):
    with Shell(n.port) as sh:
        i = fwota.info(sh)
    return i["running"], i["version"]


def test_firmware_waves_update_every_node_in_parallel_after_the_canary(mk, cores):  # noqa: F811
    nodes = [mk() for _ in range(3)]
    barrier = threading.Barrier(2, timeout=60)  # n1 and n2: both mid-transfer before either goes on
    held = set()

    def on_progress(name, done, total):
        if name != "n0" and name not in held:
            held.add(name)
            barrier.wait()  # a sequential runner breaks it (BrokenBarrierError)

    done, ok = waves.firmware_all(_targets(nodes), cores["new"], wave=2, on_progress=on_progress)
    assert ok and held == {"n1", "n2"}
    assert [(o.name, o.wave, o.before, o.after, o.state) for o in done] == [
        ("n0", 0, "0.1.0", "0.2.0", "updated"), ("n1", 1, "0.1.0", "0.2.0", "updated"),
        ("n2", 1, "0.1.0", "0.2.0", "updated")]
    assert [_running(n) for n in nodes] == [("ota_1", "0.2.0")] * 3


def test_a_canary_that_rolls_back_stops_the_fleet(mk, cores):  # noqa: F811
    nodes = [mk() for _ in range(3)]
    done, ok = waves.firmware_all(_targets(nodes), cores["bad"], board="sim", timeout=120, wave=2)
    assert not ok and [o.state for o in done] == ["failed", "not tried", "not tried"], [o.row() for o in done]
    assert "rolled back to ota_0 (micrOS 0.1.0)" in done[0].error and done[0].after == "-"
    assert [_running(n) for n in nodes] == [("ota_0", "0.1.0")] * 3


def test_a_refusal_in_wave_1_stops_wave_2(mk, cores):  # noqa: F811
    """n2 is busy with another client's firmware update and refuses: n1 of the same wave is
    updated, n3 and n4 (wave 2) keep their old firmware."""
    nodes = [mk() for _ in range(5)]
    with Shell(nodes[2].port) as other:
        assert other.cmd(f"ota fw begin 10 {'00' * 32}").startswith("fw ready")
        done, ok = waves.firmware_all(_targets(nodes), cores["new"], board="sim", wave=2)
        other.cmd("ota fw abort")
    assert not ok and "another client is updating this node" in done[2].error
    assert [(o.name, o.state, o.after) for o in done] == [
        ("n0", "updated", "0.2.0"), ("n1", "updated", "0.2.0"), ("n2", "failed", "-"),
        ("n3", "not tried", "-"), ("n4", "not tried", "-")]
    assert [_running(n)[1] for n in nodes] == ["0.2.0", "0.2.0", "0.1.0", "0.1.0", "0.1.0"]
    assert waves.summary(done).startswith("the update stopped at the first failure (n2): updated n0, n1; "
                                          "not tried n3, n4")


def test_invoke_ota_all_firmware_prints_versions(mk, cores, tmp_path, monkeypatch):  # noqa: F811
    """`invoke ota --all --firmware PATH` as a user runs it, the nodes in the device cache."""
    import os
    import subprocess

    from microsctl import ROOT
    from microsctl.fleet import cache as devcache
    from tests.test_cli import INVOKE

    monkeypatch.setenv("MICROS_DATA", str(tmp_path / "data"))
    nodes = [mk() for _ in range(3)]
    c = devcache.Cache()
    for i, n in enumerate(nodes):
        c.add(f"uid-{i}", f"n{i}", "127.0.0.1", n.port)
    c.save()
    env = dict(os.environ)
    res = subprocess.run(INVOKE + ["ota", "--all", "--firmware", str(cores["new"]), "--wave", "2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[0]: ln.split() for ln in res.stdout.splitlines()[1:] if ln.strip()}
    assert rows["n0"][2:] == ["canary", "0.1.0", "0.2.0", "canary,", "updated"]
    assert rows["n2"][2:] == ["1", "0.1.0", "0.2.0", "updated"]
