"""Conf mode over the shell, and the config store under reboots and bad files."""
import json

import pytest

from microsctl.node.client import Shell


def test_conf_mode_prompt_dump_read_write(node, sh):
    assert sh.cmd("conf") == ""
    assert sh.prompt == "[configure] node01 $ "
    dump = sh.cmd("dump").splitlines()
    keys = [ln.split(":")[0] for ln in dump]
    assert {"staessid", "devfid", "socport", "crontasks", "hwuid"} <= set(keys)
    assert "stapwd: *****" in dump and "appwd: *****" in dump
    assert sh.cmd("dump soc") == "soctout: 100\nsocport: %d" % node.port
    assert sh.cmd("soctout") == "100"
    assert sh.cmd("soctout 50") == "Saved (takes effect after reboot)"
    assert sh.cmd("soctout") == "50"
    assert sh.cmd("devfid:kitchen") == "Saved"
    assert sh.prompt == "[configure] kitchen $ "
    assert sh.cmd("pled False") == "Saved (takes effect after reboot)"
    assert sh.cmd("boothook 'gpio RGB(0,0,0)'") == "Saved (takes effect after reboot)"
    assert sh.cmd("boothook") == "gpio RGB(0,0,0)"
    assert sh.cmd("noconf") == ""
    assert sh.prompt == "kitchen $ "
    assert sh.cmd("configure") == "" and sh.cmd("noconfigure") == ""
    assert sh.prompt == "kitchen $ "
    cfg = node.config()
    assert cfg["soctout"] == 50 and cfg["devfid"] == "kitchen" and cfg["pled"] is False


@pytest.mark.parametrize("line, reply", [
    ("nosuchkey", "Error: Invalid key: nosuchkey (dump lists the keys)"),
    ("nosuchkey 1", "Error: Invalid key: nosuchkey (dump lists the keys)"),
    ("socport abc", "Error: socport takes a whole number"),
    ("socport 70000", "Error: socport must be 1..65535"),
    ("pled maybe", "Error: pled takes True or False"),
    ("devfid:", "Error: devfid must be 1..32 characters"),
    ("appwd short", "Error: appwd must be 8..64 characters"),
    ("hwuid 12", "Error: hwuid is written by the node itself"),
    ("nwmd:STA", "Error: nwmd is written by the node itself"),
    ("extirqtrig sideways", "Error: extirqtrig is up, down or both"),
    ("pinmap pwm_1=3", "Error: pinmap is name:gpio[,name:gpio...], not 'pwm_1=3'"),
])
def test_invalid_conf_values(node, sh, line, reply):
    before = node.config_path.read_text()
    sh.cmd("conf")
    assert sh.cmd(line) == reply
    assert sh.cmd("devfid") == "node01"  # still serving, still in conf mode
    assert node.config_path.read_text() == before  # nothing written


def test_secrets_are_write_only(node, sh):
    sh.cmd("conf")
    assert sh.cmd("stapwd") == "*****"
    assert sh.cmd("stapwd s3cret-wifi-key") == "Saved (takes effect after reboot)"
    assert sh.cmd("stapwd") == "*****"
    assert "s3cret" not in sh.cmd("dump")
    assert node.config()["stapwd"] == "s3cret-wifi-key"
    sh.cmd("noconf")
    assert "s3cret" not in sh.cmd("system info")
    sh.cmd("reboot")
    node.wait_ready(boots=2)
    assert "s3cret" not in node.log.read_text()


def test_builtins_work_in_conf_mode(sh):
    sh.cmd("conf")
    assert sh.cmd("hello").startswith("hello:node01:")
    assert "[CONF]" in sh.cmd("help")


def test_config_survives_reboot(node):
    with Shell(node.port) as s:
        s.cmd("conf")
        s.cmd("devfid rebooted")
        s.cmd("soctout 42")
        assert s.cmd("reboot") == "Reboot"
    node.wait_ready(boots=2)
    with Shell(node.port) as s:
        assert s.prompt == "rebooted $ "
        assert s.cmd("conf") == ""
        assert s.cmd("soctout") == "42"
    assert node.boots == 2


def test_system_reboot_lm(node):
    with Shell(node.port) as s:
        s.sock.sendall(b"system reboot\n")
    node.wait_ready(boots=2)
    with Shell(node.port) as s:
        assert s.cmd("hello").startswith("hello:")


def test_missing_config_falls_back_to_defaults(make_node):
    n = make_node(start=False)
    n.config_path.unlink()
    log = n.boot_log()
    assert "config: no node_config.json, using defaults" in log
    cfg = json.loads(n.config_path.read_text())
    assert cfg["devfid"] == "node01" and cfg["socport"] == 9008 and cfg["nwmd"] == "AP"


def test_corrupt_config_defaults_and_keeps_copy(make_node):
    n = make_node(start=False)
    n.config_path.write_text('{"devfid": "x", "socport": 9100, ')  # cut mid-write
    n.fs.joinpath("node_config.json.tmp").write_text('{"half": ')  # a write that never finished
    log = n.boot_log()
    assert "node_config.json is corrupt, using defaults (old copy kept as node_config.json.bad)" in log
    assert n.fs.joinpath("node_config.json.bad").read_text().startswith('{"devfid": "x"')
    assert not n.fs.joinpath("node_config.json.tmp").exists()
    cfg = json.loads(n.config_path.read_text())
    assert cfg["devfid"] == "node01" and cfg["socport"] == 9008


def test_interrupted_write_keeps_old_config(make_node):
    n = make_node(start=False)
    n.fs.joinpath("node_config.json.tmp").write_text('{"devfid": "half')  # reset mid-write
    cfg_before = n.config()
    n.start()
    with Shell(n.port) as s:
        assert s.prompt == "%s $ " % cfg_before["devfid"]
    assert not n.fs.joinpath("node_config.json.tmp").exists()


def test_unknown_keys_and_wrong_types_are_ignored_with_a_note(make_node):
    n = make_node(start=False)
    cfg = n.config()
    cfg.update({"bogus": 1, "soctout": "fast", "devfid": "typed"})
    n.config_path.write_text(json.dumps(cfg))
    log = n.boot_log()
    assert "config: ignored Invalid key: bogus" in log
    assert "config: ignored soctout takes int" in log
    n.start()
    with Shell(n.port) as s:
        assert s.prompt == "typed $ "
        s.cmd("conf")
        assert s.cmd("soctout") == "100"


def test_conf_mode_warns_cron_without_timirq(sh):
    sh.cmd("conf")
    assert sh.cmd("cron True") == "Saved (takes effect after reboot); note: cron runs only with timirq True"
    assert sh.cmd("timirq True") == "Saved (takes effect after reboot)"
    assert sh.cmd("timirq False") == "Saved (takes effect after reboot); note: cron runs only with timirq True"
    assert sh.cmd("cron False") == "Saved (takes effect after reboot)"



def test_defaults_read_back_without_notes(node):
    """The config the node saved itself (every default, authkey 'n/a' included) loads again after a
    reboot with no 'ignored' note: a default is valid even where it is shorter than a set value."""
    with Shell(node.port) as s:
        s.cmd("conf")
        assert s.cmd("reboot") == "Reboot"
    node.wait_ready(boots=2)
    with Shell(node.port) as s:
        assert s.cmd("hello").startswith("hello:")
    assert "config: ignored" not in node.log.read_text()
