"""`invoke shell --profile NAME` answers a node's challenge with the key from
config_profiles/NAME.secrets.json, as `invoke sim --profile NAME` put it on the node
(microsctl/flashing/profiles.py authkey(profile)); the key is never printed."""
import io
import json

import pytest
from invoke import Context, Exit

from microsctl import cli

KEY = "lab-profile-key-42"


@pytest.fixture
def lab(auth_profile):
    """A profile whose secrets file holds the shell key; nothing else in the secrets layer."""
    return auth_profile(KEY)


def test_shell_takes_the_key_from_the_profiles_secrets_file(lab, make_node, capsys):
    n = make_node(profile="authlab")
    assert n.config()["auth"] is True and n.config()["authkey"] == KEY  # what the sim put on it
    cli.shell(Context(), port=n.port, command="system info", profile="authlab")
    out = capsys.readouterr()
    assert "auth: on" in out.out and "devfid:" in out.out
    assert KEY not in out.out + out.err
    # the interactive session too
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO("hello\nexit\n"))
        cli.shell(Context(), port=n.port, profile="authlab")
    out = capsys.readouterr()
    assert "hello:node01:" in out.out and KEY not in out.out + out.err


def test_without_the_profile_the_key_is_not_found_and_the_error_says_where(lab, make_node):
    n = make_node(profile="authlab")
    with pytest.raises(Exit) as e:
        cli.shell(Context(), port=n.port, command="hello")
    assert "asks for its shell key: set MICROS_AUTHKEY or add authkey to secrets.json" in e.value.message
    (lab / "other.json").write_text(json.dumps({"description": "no key of its own", "settings": {}}))
    with pytest.raises(Exit) as e:
        cli.shell(Context(), port=n.port, command="hello", profile="other")
    assert "or add authkey to secrets.json or config_profiles/other.secrets.json" in e.value.message
    assert KEY not in e.value.message
    with pytest.raises(Exit) as e:
        cli.shell(Context(), port=n.port, command="hello", profile="nosuch")
    assert "unknown profile 'nosuch'" in e.value.message


def test_sim_names_the_profile_in_its_shell_hint_when_only_its_secrets_file_has_the_key(lab, monkeypatch, capsys):
    import shutil

    from microsctl.node import sim
    from microsctl.node.sim import SIM_ROOT, free_port

    monkeypatch.setattr(sim.SimNode, "run", lambda self: 0)  # laid out and announced, not booted
    port = free_port()
    name = f"tidyhint{port}"
    try:
        cli.sim(Context(), profile="authlab", node=name, port=port)
        out = capsys.readouterr().out
        assert f"[sim] shell: invoke shell --port {port} --profile authlab\n" in out
        monkeypatch.setenv("MICROS_AUTHKEY", KEY)  # the key is found without the profile too
        cli.sim(Context(), profile="authlab", node=name, port=port)
        out2 = capsys.readouterr().out
        assert f"[sim] shell: invoke shell --port {port}\n" in out2
    finally:
        shutil.rmtree(SIM_ROOT / name, ignore_errors=True)
    assert KEY not in out + out2
