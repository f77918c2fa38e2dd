"""invoke build --board unix: MicroPython's unix port with micrOS frozen in, built in the
pinned Docker toolchain. No Docker engine here: the exact commands, the Dockerfile stage
and the manifest evaluation are checked (upstream: ports/unix/Makefile, whose builds are
chosen by VARIANT=, and ports/unix/variants/{manifest.py,standard/manifest.py} at v1.28.0)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from microsctl import ROOT, MicrosError
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.firmware import manifest

TC = json.loads((ROOT / "docker" / "toolchain.json").read_text())
MPY = TC["micropython"]
FROZEN = ROOT / "frozen"
STANDARD = "$(PORT_DIR)/variants/standard/manifest.py"


def intended():
    """The core, and the virtual board's own facts (boards/sim/micros_board.py): the binary runs as the sim."""
    from microsctl.firmware.compile import core_sources

    return sorted([f"micros/{p.name}" for p in core_sources()] + ["micros_board.py"])


def standins():
    """The sim's stand-ins for a board's firmware modules and its boot script (ports/unix/manifest.py)."""
    return {t for t in manifest.for_board(boards.get("unix")).targets() if t.startswith("ports/unix/")} | {"simboot.py"}


def test_unix_is_a_host_binary_not_the_sim():
    u, sim = boards.get("unix"), boards.get("sim")
    assert (u.port, u.mpy_board, u.firmware.file) == ("unix", "standard", "micropython")
    assert u.host_binary and not u.is_virtual
    assert sim.is_virtual and not sim.host_binary
    # it runs as the virtual board: the sim's flash layout and pins
    assert (u.filesystem, u.flash_size, u.pins, u.mpy) == (sim.filesystem, sim.flash_size, sim.pins, sim.mpy)


def test_exact_docker_commands():
    b = boards.get("unix")
    cmds = build.plan(b, 4, 1000, 1000, 1700000000)
    assert cmds == [
        # no --platform: the unix port is built for the host's own architecture
        ["docker", "build", "--target", "unix", "--build-arg", f"MICROPY_VERSION={MPY}",
         "--build-arg", f"DEBIAN_IMAGE={build.base_image('debian')}", "-t", f"micros-build:unix-{MPY}",
         "-f", str(build.DOCKERFILE), str(build.CONTEXT)],
        ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "-e", "HOME=/tmp", "-e", "SOURCE_DATE_EPOCH=1700000000",
         "-v", f"{ROOT}:/micros:ro", "-v", f"{ROOT}/build/unix:/out", "-w", "/opt/micropython",
         f"micros-build:unix-{MPY}",
         # ports/unix/Makefile: VARIANT selects variants/<name>, there is no BOARD
         "make", "-C", "ports/unix", "-j4", "VARIANT=standard", "BUILD=/out/mp",
         "FROZEN_MANIFEST=/micros/boards/unix/manifest.py", "MICROPY_MANIFEST_MICROS_DIR=/micros"],
    ]
    assert build.artefacts(b) == [("micropython", "micropython")]


def _stage(text, name):
    m = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", text, re.M | re.S)
    return m.group(1) if m else None


def test_dockerfile_has_the_unix_stage():
    text = build.DOCKERFILE.read_text()
    stage = _stage(text, "unix")
    assert stage is not None, "no 'FROM ... AS unix' stage"
    assert re.search(r"^FROM \$\{DEBIAN_IMAGE\} AS unix$", text, re.M)  # the pinned base
    for pkg in ("gcc", "libffi-dev", "pkg-config", "make", "python3", "git"):
        assert re.search(rf"\s{re.escape(pkg)}(\s|\\)", stage), pkg
    assert "COPY --from=source /opt/micropython /opt/micropython" in stage
    # submodules at image build time: `docker run` needs no network
    assert "make -C /opt/micropython/ports/unix VARIANT=standard submodules" in stage
    assert "USER 10001:10001" in stage and "WORKDIR /opt/micropython" in stage


def test_manifest_freezes_the_standard_variant_and_the_core():
    res = manifest.for_board(boards.get("unix"))
    assert sorted(set(res.targets()) - standins()) == intended()
    assert [(e.call, e.path) for e in res.external] == [("include", STANDARD)]
    assert FROZEN / "micros" / "manifest.py" in res.included
    assert res.included[-1] == ROOT / "ports" / "unix" / "manifest.py"
    board_module = next(f for f in res.frozen if f.target == "micros_board.py")
    assert board_module.src == boards.get("sim").dir / "micros_board.py"


def _fake_mpy_tree(root):
    """The manifests the unix build reads, as MicroPython v1.28.0 has them
    (ports/unix/variants/standard/manifest.py, variants/manifest.py, extmod/asyncio/manifest.py)."""
    def w(rel, text):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    w("ports/unix/variants/standard/manifest.py",
      'include("$(PORT_DIR)/variants/manifest.py")\n\ninclude("$(MPY_DIR)/extmod/asyncio")\n')
    w("ports/unix/variants/manifest.py",
      'add_library("unix-ffi", "$(MPY_LIB_DIR)/unix-ffi")\nrequire("mip-cmdline")\nrequire("ssl")\n')
    files = ("__init__.py", "core.py", "event.py", "funcs.py", "lock.py", "stream.py")
    w("extmod/asyncio/manifest.py",
      f'package("asyncio", {files!r}, base_path="..", opt=3)\nmodule("uasyncio.py", opt=3)\n')
    for f in files + ("uasyncio.py",):
        w(f"extmod/asyncio/{f}", "")
    (root / "lib" / "micropython-lib" / "unix-ffi").mkdir(parents=True)


def test_manifest_in_a_micropython_tree(tmp_path):
    """Evaluated against the upstream layout: asyncio and the core frozen, what the stock
    unix binary requires from micropython-lib still required."""
    _fake_mpy_tree(tmp_path)
    b = boards.get("unix")
    res = manifest.evaluate(b.dir / "manifest.py", manifest.variables(b, tmp_path))
    asyncio = sorted(t for t in set(res.targets()) - standins() if not t.startswith("micros"))
    assert asyncio == ["asyncio/__init__.py", "asyncio/core.py", "asyncio/event.py", "asyncio/funcs.py",
                       "asyncio/lock.py", "asyncio/stream.py", "uasyncio.py"]
    assert sorted(t for t in res.targets() if t.startswith("micros")) == intended()
    assert res.requires == ["mip-cmdline", "ssl"]


def test_dry_run_prints_both_commands_and_runs_nothing():
    out = subprocess.run([sys.executable, "-m", "invoke", "build", "--board", "unix", "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("$ ")]
    assert lines[0].startswith("$ docker build --target unix ")
    assert lines[1].startswith("$ docker run --rm ")
    assert re.search(r" make -C ports/unix -j\d+ VARIANT=standard BUILD=/out/mp "
                     r"FROZEN_MANIFEST=/micros/boards/unix/manifest.py MICROPY_MANIFEST_MICROS_DIR=/micros$", lines[1])
    assert "build/unix/" in out.stdout


def test_no_engine_is_one_line_without_a_fetch_hint(monkeypatch):
    monkeypatch.setattr(build, "engine_problem", lambda: "the docker command is not installed")
    with pytest.raises(MicrosError) as e:
        build.build("unix")
    msg = str(e.value)
    assert msg.startswith("cannot build unix here: the docker command is not installed")
    assert "fetch" not in msg and "\n" not in msg


@pytest.mark.parametrize("task", ["flash", "provision", "fetch"])
def test_the_binary_is_run_not_flashed(task):
    """Without this, flash/provision would go for a serial port and fetch for a release index."""
    out = subprocess.run([sys.executable, "-m", "invoke", task, "--board", "unix"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MICROS_INDEX": "/nonexistent"})
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "error: unix is a MicroPython program for this computer, not a board to flash or fetch: "
        "build it (invoke build --board unix) and run it with "
        "'invoke sim --micropython build/unix/micropython --frozen'")


def test_boards_lists_it_as_a_host_program():
    head, rows = boards.table()
    row = dict(zip(head, next(r for r in rows if r[0] == "unix")))
    assert row["Firmware"] == "micropython, a host program"  # nothing of it is flashed, no offset
    assert row["Aliases"] == "unix-frozen"


@pytest.mark.skipif(not os.environ.get("MICROS_MPY_SRC"),
                    reason="set MICROS_MPY_SRC to a MicroPython v1.28.0 tree (with lib/micropython-lib)")
def test_manifest_in_the_real_micropython_tree():
    """The same evaluation against the real upstream files the build container holds."""
    src = Path(os.environ["MICROS_MPY_SRC"])
    b = boards.get("unix")
    res = manifest.evaluate(b.dir / "manifest.py", manifest.variables(b, src))
    assert src / "ports" / "unix" / "variants" / "standard" / "manifest.py" in res.included
    assert {"asyncio/core.py", "asyncio/stream.py", "uasyncio.py"} <= set(res.targets())
    assert sorted(t for t in res.targets() if t.startswith("micros")) == intended()
    assert res.requires == ["mip-cmdline", "ssl"]
    assert [(e.call, e.path) for e in res.external] == [
        ("add_library", str(src / "lib" / "micropython-lib" / "unix-ffi")),
        ("require", "mip-cmdline"), ("require", "ssl")]
