"""ports/rescue.py, what main.py runs when the micrOS core cannot start: WebREPL with the config's
appwd, read a character at a time (no json.load of every setting at once), as the .mpy the
filesystem gets (fsimage.boot_files), on the real unix port. webrepl.start() is stood in for by a
module that prints the password it is given (extmod/modwebrepl.c checks it: 4..9 characters)."""
import json
import subprocess

import pytest

from microsctl.flashing import fsimage
from microsctl.run import micropython

WEBREPL = "def start(password=None):\n    print('webrepl password', repr(password))\n"


def rescue(tmp_path, config):
    for name, data in fsimage.boot_files().items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "webrepl.py").write_text(WEBREPL)
    if config is not None:
        (tmp_path / "node_config.json").write_text(config)
    res = subprocess.run([micropython(), "-c", "import rescue"], capture_output=True, text=True, timeout=30,
                         cwd=tmp_path)
    assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
    return res.stdout.strip()


@pytest.mark.parametrize("config", [
    {"devfid": "node01", "appwd": "Rescue99", "socport": 9008},
    # a value that looks like the key comes first; an escape in the password itself
    {"devfid": '"appwd": "evil"', "boothook": 'x\\", "appwd": "evil2', "appwd": 'R\\e"s9'},
    {"pinmap": {"appwd": "nested"}, "appwd": "Top12345"},
])
def test_rescue_starts_webrepl_with_appwd(tmp_path, config):
    assert rescue(tmp_path, json.dumps(config)) == "webrepl password %r" % config["appwd"]


def test_rescue_reads_the_file_the_node_writes(tmp_path):
    # conf's own writer: key by key, json.dump of each value (frozen/micros/confw.py save)
    text = '{"devfid": "n", "appwd": "Sw0rd\\\\fish", "socport": 9008}'
    assert rescue(tmp_path, text) == "webrepl password 'Sw0rd\\\\fish'"


@pytest.mark.parametrize("config, error", [
    (None, "OSError"),  # no config
    ('{"devfid": "node01"}', "KeyError('appwd',)"),
    ('{"devfid": "node01", "appwd": "cut', "ValueError"),
])
def test_rescue_says_why_it_cannot_start(tmp_path, config, error):
    out = rescue(tmp_path, config)
    assert out.startswith("no WebREPL rescue: " + error), out
