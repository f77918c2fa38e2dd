"""Fitting the original micrOS's Load Modules to the boards (issue 12 §5): frozen
on the ESP32 boards, shipped as .mpy in the ESP8266's filesystem image when a
profile uses them; one profile per LM family, whose examples work on a node."""
import shutil

import pytest

from microsctl.firmware import boards
from microsctl.firmware.compile import compile_one, core_sources
from microsctl.flashing import fsimage, profiles
from microsctl.node.client import Shell

LM_PROFILES = ("light", "dimmer", "switch", "neopixel", "servo", "sensors", "air", "oled", "esp32")
# the devices the examples talk to, wired on the virtual board first
WIRING = {
    "sensors": ["sim distance pwm_5 500", "sim adc adc_0 20000"],
    "air": ["sim dht simple_1 21.5 40"],
    "esp32": ["sim touch 14 400"],
}


@pytest.mark.parametrize("name", LM_PROFILES)
def test_profile_examples_work_on_a_node(make_node, name):
    prof = profiles.load(name)
    assert prof["modules"] and prof["examples"]
    n = make_node(profile=name, board="ESP32_GENERIC" if name == "esp32" else None)
    with Shell(n.port) as sh:
        for cmd in WIRING.get(name, []):
            assert not sh.cmd(cmd).startswith("Error")
        for ex in prof["examples"]:
            out = sh.cmd(ex)
            assert not out.startswith("Error"), f"{name}: {ex} -> {out}"


def test_esp8266_image_carries_the_profiles_lms_as_mpy_esp32_freezes_them():
    cfg = profiles.config("oled")
    mods = profiles.load("oled")["modules"]
    e8 = fsimage.node_files(boards.get("ESP8266_GENERIC"), cfg, mods)
    assert {"LM_oled_128x64i2c.mpy", "LM_oled_widgets.mpy"} <= set(e8)
    assert e8["LM_oled_widgets.mpy"][:3] == b"M\x06\x00"  # bytecode only: runs on any arch
    e32 = fsimage.node_files(boards.get("ESP32_GENERIC"), cfg, mods)
    assert not [f for f in e32 if f.startswith("LM_")]
    assert "oled_128x64i2c" in fsimage.frozen_lms(boards.get("ESP32_GENERIC"))
    assert "oled_128x64i2c" not in fsimage.frozen_lms(boards.get("ESP8266_GENERIC"))


def test_an_lm_from_the_filesystem_runs_beside_a_core_without_it(make_node, tmp_path):
    # the ESP8266 layout: the core frozen without the original's LMs, LM_light.mpy on the filesystem
    core = tmp_path / "core" / "micros"
    core.mkdir(parents=True)
    for src in core_sources():
        if src.name not in ("LM_light.py",):
            compile_one(src, core / (src.stem + ".mpy"), f"micros/{src.name}", opt=3)
    n = make_node(profile="light", code=tmp_path / "core", start=False)
    files = fsimage.node_files(boards.get("ESP8266_GENERIC"), profiles.config("light"), ["light"])
    (n.fs / "LM_light.mpy").write_bytes(files["LM_light.mpy"])
    n.start()
    with Shell(n.port) as sh:
        assert sh.cmd("light rgb 10 20 30") == "SET rgb: R10G20B30"
        assert "  light" in sh.cmd("help").splitlines()
    shutil.rmtree(tmp_path / "core")
