"""Every task that talks to nodes takes --profile NAME and answers a node's challenge with the key
from config_profiles/NAME.secrets.json, the key `invoke sim --profile NAME` put on the node: one
lookup (microsctl.cli.profile_key over microsctl.flashing.profiles.key_profile and shell_key),
used by the sync shell client (microsctl/node/client.py: shell, ota) and the asyncio one
(microsctl/fleet/aclient.py: status, scan, backup, restore). The key is never printed.
Against virtual nodes (the real MicroPython unix port) with auth on."""
import json

import pytest
from invoke import Context, Exit

from microsctl import cli
from microsctl.flashing import profiles
from microsctl.node.client import Shell

KEY = "lab-profile-key-99"


@pytest.fixture
def lab(auth_profile, tmp_path, monkeypatch):
    """A profile whose secrets file alone holds the shell key; an empty device cache."""
    d = auth_profile(KEY)
    monkeypatch.setenv("MICROS_DATA", str(tmp_path / "data"))
    return d


@pytest.fixture
def node(lab, make_node):
    n = make_node(profile="authlab")
    assert n.config()["auth"] is True and n.config()["authkey"] == KEY  # what the sim put on it
    from microsctl.fleet import cache as devcache

    c = devcache.Cache()
    c.add("uid-lab", "node01", "127.0.0.1", n.port)
    c.save()
    return n


def _secret_free(capsys, *more):
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + "".join(more)
    return out


def test_ota_answers_with_the_profiles_key(node, tmp_path, capsys):
    lm = tmp_path / "LM_mine.py"
    lm.write_text("def hello():\n    return 'from ota'\n")
    with pytest.raises(Exit) as e:  # before: the only lookup, and it has no key
        cli.ota(Context(), port=node.port, files=[str(lm)])
    assert "asks for its shell key: set MICROS_AUTHKEY or add authkey to secrets.json" in e.value.message
    cli.ota(Context(), port=node.port, files=[str(lm)], profile="authlab")
    out = _secret_free(capsys, e.value.message)
    assert out.out.startswith("[ota] done: LM_mine.mpy")
    with Shell(node.port, key=KEY) as sh:
        assert sh.cmd("mine hello") == "from ota"


def test_ota_all_answers_with_the_profiles_key(node, tmp_path, capsys):
    lm = tmp_path / "LM_mine.py"
    lm.write_text("def hello():\n    return 'from ota --all'\n")
    cli.ota(Context(), all=True, files=[str(lm)], profile="authlab")
    out = _secret_free(capsys)
    assert "canary, updated" in out.out
    with Shell(node.port, key=KEY) as sh:
        assert sh.cmd("mine hello") == "from ota --all"


def test_status_answers_with_the_profiles_key(node, capsys):
    cli.status(Context(), dev="node01", json=True)
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["status"] == "auth failed"
    assert "authkey in secrets.json" in rows[0]["error"]
    cli.status(Context(), dev="node01", json=True, profile="authlab")
    out = _secret_free(capsys, rows[0]["error"])
    rows = json.loads(out.out)
    assert rows[0]["status"] == "online" and rows[0]["fuid"] == "node01" and rows[0]["version"]


def test_backup_and_restore_answer_with_the_profiles_key(node, capsys):
    with pytest.raises(Exit) as e:
        cli.backup(Context(), dev="node01", no_secrets=True)
    assert "asks for its shell key" in e.value.message
    cli.backup(Context(), dev="node01", no_secrets=True, profile="authlab")
    out = _secret_free(capsys, e.value.message)
    assert out.out.startswith("[backup] node01:") and "settings, no secrets" in out.out
    cli.restore(Context(), dev="node01", profile="authlab")
    out = _secret_free(capsys)
    assert out.out.startswith("[restore] node01: 0 settings written")


def test_scan_answers_with_the_profiles_key(node, tmp_path, capsys):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(f"127.0.0.1:{node.port}\n")
    cli.scan(Context(), hosts=str(hosts), mdns="0", json=True)
    before = json.loads(capsys.readouterr().out)
    cli.scan(Context(), hosts=str(hosts), mdns="0", json=True, profile="authlab")
    after = json.loads(_secret_free(capsys).out)
    assert before[0]["status"] != "online" and before[0]["uid"] is None  # locked: its hardware id unseen
    assert after[0]["status"] == "online" and after[0]["uid"]


def test_an_unknown_profile_is_refused_before_any_connection(lab):
    for task, kw in ((cli.ota, {"port": 9, "files": ["x"]}), (cli.status, {"dev": "127.0.0.1:9"}),
                     (cli.backup, {"dev": "127.0.0.1:9"}), (cli.shell, {"port": 9, "command": "hello"})):
        with pytest.raises(Exit) as e:
            task(Context(), profile="nosuch", **kw)
        assert "unknown profile 'nosuch'" in e.value.message, task.__name__


def test_the_lookup_is_scoped_to_the_task(node):
    """Nothing is left behind for the next task in the same process (tests call tasks in-process)."""
    from concurrent.futures import ThreadPoolExecutor

    with profiles.key_profile("authlab"):
        assert profiles.shell_key() == (KEY, "secrets.json or config_profiles/authlab.secrets.json")
        with ThreadPoolExecutor(2) as pool:  # worker threads (the fleet's update waves) see it too
            assert pool.submit(profiles.shell_key).result()[0] == KEY
    assert profiles.shell_key() == (None, "secrets.json")


def test_the_flag_as_invoke_parses_it(node, capsys):
    """`invoke status --dev node01 --profile authlab --json` through invoke's own parser (in this
    process, so the lab profile is the one found). On a copy of the collection: invoke's
    Task.arg_opts pops each help text as it builds the parser, so parsing with cli.ns itself
    would leave tests/test_cli.py's help checks nothing to read when they run after this."""
    import copy

    from invoke import Program

    Program(namespace=copy.deepcopy(cli.ns)).run(["invoke", "status", "--dev", "node01", "--profile", "authlab", "--json"],
                                  exit=False)
    rows = json.loads(_secret_free(capsys).out)
    assert rows[0]["status"] == "online"


def test_firmware_ota_answers_with_the_profiles_key(lab, make_node, tmp_path, capsys):
    """`invoke ota --firmware IMAGE --profile NAME` on the sim's ESP32 OTA layout (tests/test_fwota.py):
    the profile gives only the key there (before, --profile was refused with --firmware)."""
    from microsctl.node import simota
    from tests.test_fwota import _romfs

    old, new = _romfs(tmp_path, "0.1.0"), _romfs(tmp_path, "0.2.0")
    img = tmp_path / "flash.img"
    simota.write_image(img, old)
    # a kept image keeps its own settings (microsctl/node/sim.py _prepare_flash): the key the
    # profile's secrets file holds goes on as the node's own, as flashing with the profile does
    n = make_node(sets=[f"authkey={KEY}"], flash=img)
    with pytest.raises(Exit) as e:
        cli.ota(Context(), port=n.port, firmware=str(new))
    assert "asks for its shell key" in e.value.message
    cli.ota(Context(), port=n.port, firmware=str(new), profile="authlab")
    out = _secret_free(capsys, e.value.message)
    assert "the node runs ota_1, micrOS 0.2.0" in out.out
