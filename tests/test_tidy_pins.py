"""The logical pin names the 13 original Load Modules (frozen/micros/LM_*.py) ask micros.pins
for, walked against every board's table (boards/*/micros_board.py PINS, as frozen, and
board.json "pins"), on the real MicroPython. A name a board leaves out (the original's
ESP8266 map put simple_1/simple_2 on GPIO 10/9, flash lines on QIO modules: see
/work/shared/reference/micros-upstream.md and docs/boards.md) must fail with a message that
says how to map it, and a pinmap entry must then make the LM work."""
import ast
import json
import re
import subprocess

import pytest

from microsctl import BOARDS, FROZEN, PORTS
from microsctl.node.client import Shell
from microsctl.run import micropython

PIN_NAME = re.compile(r"^(builtin|pwm_\d+|simple_\d+|adc_\d+|i2c_s(da|cl))$")
BOARD_DIRS = sorted(p.parent for p in BOARDS.glob("*/micros_board.py"))


def lm_pin_names():
    """{name: {LM files that use it}} from the string constants of the LMs' sources."""
    names = {}
    for f in sorted((FROZEN / "micros").glob("LM_*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and PIN_NAME.match(node.value):
                names.setdefault(node.value, set()).add(f.stem)
    return names


WALK = r"""
import sys, os
sys.path[:0] = [%(board)r, %(unix)r, %(frozen)r]
os.chdir(%(tmp)r)
from micros import conf, pins
conf.load()
for name in %(names)r:
    try:
        print(name, pins.pin(name))
    except ValueError as e:
        print(name, "!", e)
"""


def test_the_lms_use_the_original_pin_names():
    names = lm_pin_names()
    assert {"pwm_0", "pwm_1", "pwm_2", "pwm_3", "pwm_4", "pwm_5", "simple_0", "simple_1", "simple_2",
            "adc_0", "i2c_sda", "i2c_scl", "builtin"} == set(names)
    assert {"LM_air"} <= names["simple_1"] and {"LM_motion_sensor"} <= names["simple_2"]


@pytest.mark.parametrize("board", BOARD_DIRS, ids=lambda p: p.name)
def test_every_lm_pin_name_resolves_or_says_how_to_map_it(board, tmp_path):
    names = sorted(lm_pin_names())
    src = WALK % {"board": str(board), "unix": str(PORTS / "unix"), "frozen": str(FROZEN), "tmp": str(tmp_path),
                  "names": names}
    res = subprocess.run([micropython(), "-c", src], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr + res.stdout
    got = dict(line.split(" ", 1) for line in res.stdout.splitlines())
    table = json.loads((board / "board.json").read_text())["pins"]
    for name in names:
        if name in table:  # the frozen table and board.json agree
            assert got[name] == str(table[name]), (board.name, name)
        else:  # left out on this board: the error says what to do
            assert got[name] == f"! no {name} pin on this board: add {name}:<gpio> to pinmap", (board.name, name)
    missing = sorted(set(names) - set(table))
    want = {"ESP8266_GENERIC": ["simple_1", "simple_2"], "ESP32_GENERIC_C3": ["simple_1", "simple_2"]}
    assert missing == want.get(board.name, []), board.name  # as docs/boards.md says


def test_an_lm_on_a_board_without_its_pin_says_so_then_works_with_pinmap(make_node):
    n = make_node(board="esp8266")
    with Shell(n.port) as s:
        assert s.cmd("motion_sensor get_PIR_state") == (
            "Error: ValueError: no simple_2 pin on this board: add simple_2:<gpio> to pinmap")
        assert s.cmd("conf") == ""
        s.cmd("pinmap simple_2:13")
        s.cmd("noconf")
        assert s.cmd("motion_sensor get_PIR_state") == "edges: 0\nstate: 0"
