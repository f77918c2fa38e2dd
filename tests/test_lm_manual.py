"""The LM manual (invoke lm-manual) is generated from the sources and kept in
sync: sfuncman.json, docs/load-modules.md, and every LM's help() on the node."""
import json
import subprocess
import sys

from microsctl import ROOT
from microsctl.firmware import lmdoc

# the original micrOS v0.4's Load Modules and functions (issue 12 §2)
ORIGINAL = {
    "system": "memfree gcollect heartbeat clock ntp module cachedump ifmode info",
    "light": "rgb toggle rgb_cache_load_n_init",
    "dimmer": "set_value toggle dimmer_cache_load_n_init",
    "switch": "set_state toggle switch_cache_load_n_init",
    "neopixel": "neopixel segment toggle neopixel_cache_load_n_init",
    "servo": "Servo Servo_demo Servo_deinit Servo2 Servo2_deinit",
    "oled_128x64i2c": "text invert clean draw_line draw_rect poweron poweroff",
    "oled_widgets": "simple_page show_debug_page toggle_invert",
    "distance_HCSR04": "distance_mm distance_cm deinit",
    "motion_sensor": "get_PIR_state PIR_deinit",
    "adc": "measure action_fltr",
    "air": "dht_measure getMQ135GasPPM measure",
    "esp32": "hall intemp touchpin14",
}


def test_manual_files_are_in_sync_with_the_sources():
    js, md = lmdoc.render()
    assert (ROOT / "sfuncman.json").read_text() == js, "run: invoke lm-manual"
    assert (ROOT / "docs" / "load-modules.md").read_text() == md, "run: invoke lm-manual"


def test_every_original_function_is_documented():
    man = json.loads((ROOT / "sfuncman.json").read_text())
    for mod, funcs in ORIGINAL.items():
        for f in funcs.split():
            entry = man[f"LM_{mod}"][f]
            assert entry["doc"], f"{mod} {f} has no docstring"
            assert entry["call"].startswith(f"{mod} {f}")
    assert man["LM_light"]["rgb"]["signature"] == "rgb r=None g=None b=None"
    assert man["LM_air"]["getMQ135GasPPM"]["signature"] == "getMQ135GasPPM temperature humidity"


def test_help_on_the_node_matches_the_signatures():
    for path in sorted((ROOT / "frozen" / "micros").glob("LM_*.py")):
        sigs = [f["signature"] for f in lmdoc.collect()[path.stem[3:]]]
        assert lmdoc.help_lines(path) == sigs, f"{path.name}: help() differs from its functions; run invoke lm-manual"


def test_invoke_lm_manual_writes_both_files(tmp_path):
    out = lmdoc.write(tmp_path / "sfuncman.json", tmp_path / "load-modules.md")
    assert [p.name for p in out] == ["sfuncman.json", "load-modules.md"]
    assert json.loads(out[0].read_text())["LM_dimmer"]["set_value"]["signature"] == "set_value value=None"
    r = subprocess.run([sys.executable, "-m", "invoke", "lm-manual", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "sfuncman.json" in r.stdout
