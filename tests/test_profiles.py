import io
import json

import pytest
from hypothesis import given, strategies as st

from microsctl import MicrosError
from microsctl.flashing import profiles
from microsctl.flashing import schema
from tests.flashkit import SECRETS, set_secrets

FAMILIES = {"system", "gpio"}  # the Load Module families shipped (frozen/micros/LM_*.py)


@pytest.fixture
def env_only(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "secrets.json")
    monkeypatch.delenv("MICROS_SECRETS", raising=False)
    for k in SECRETS:
        monkeypatch.delenv(k, raising=False)
    return tmp_path


def test_required_profiles_exist_and_validate():
    names = set(profiles.names())
    assert {"default", "lamp", "heartbeat"} | FAMILIES <= names
    for n in names:
        prof = profiles.load(n)  # validated against the device's own schema
        assert prof["examples"], f"{n} has no example commands"
        assert not schema.secrets() & set(prof["settings"])
    for fam in FAMILIES:
        assert all(ex.split()[0] == fam for ex in profiles.load(fam)["examples"])


def test_layering_profile_device_set_secrets(env_only, monkeypatch):
    dev = env_only / "node7.json"
    dev.write_text(json.dumps({"devfid": "node7", "socport": 9100}))
    (env_only / "secrets.json").write_text(json.dumps({"stapwd": "from-file", "appwd": "from-file-1",
                                                          "authkey": "key-from-file"}))
    monkeypatch.setenv("MICROS_APPWD", "from-env-22")
    cfg = profiles.settings("heartbeat", ["socport=9200"], dev)
    assert cfg["timirq"] is True  # profile
    assert cfg["devfid"] == "node7"  # device file over profile
    assert cfg["socport"] == 9200  # --set over device file
    assert cfg["stapwd"] == "from-file" and cfg["appwd"] == "from-env-22"  # env over file
    assert cfg["authkey"] == "key-from-file" and cfg["auth"] is True  # a key: the shell asks for it


def test_bad_values_are_refused(env_only):
    with pytest.raises(MicrosError, match="socport"):
        profiles.settings("default", ["socport=0"], secrets=False)
    with pytest.raises(MicrosError, match="Invalid key"):
        profiles.settings("default", ["nosuchkey=1"], secrets=False)
    with pytest.raises(MicrosError, match="unknown profile"):
        profiles.load("nosuch")


def test_secret_in_profile_or_on_command_line_is_refused(env_only, monkeypatch, tmp_path):
    bad = tmp_path / "profiles"
    bad.mkdir()
    (bad / "leaky.json").write_text(json.dumps({"settings": {"stapwd": "oops-secret"}}))
    monkeypatch.setattr(profiles, "PROFILES", bad)
    with pytest.raises(MicrosError) as err:
        profiles.load("leaky")
    assert "oops-secret" not in str(err.value) and "MICROS_STAPWD" in str(err.value)
    monkeypatch.undo()
    with pytest.raises(MicrosError, match="is a secret"):
        profiles.settings("default", ["stapwd=hunter22"], secrets=False)


def test_missing_secret_is_an_error_without_a_terminal(env_only, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(MicrosError, match="MICROS_APPWD"):
        profiles.settings("default")


def test_missing_secret_is_asked_on_a_terminal(env_only, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    asked = []
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr(profiles.getpass, "getpass", lambda prompt: asked.append(prompt) or "typed-secret-1")
    cfg = profiles.settings("default")
    assert cfg["stapwd"] == cfg["appwd"] == cfg["authkey"] == "typed-secret-1"
    assert len(asked) == 3 and not any("typed" in a for a in asked)


def test_describe_masks_secrets(env_only, monkeypatch, capsys):
    set_secrets(monkeypatch, env_only)
    text = profiles.describe("lamp", ["devfid=shown01"])
    assert "shown01" in text and "(--set)" in text
    for v in SECRETS.values():
        assert v not in text
    assert text.count(profiles.MASK) == 4  # stapwd, appwd, authkey, mqttpwd: every secret masked


def test_secret_value_never_in_error_text(env_only, monkeypatch):
    monkeypatch.setenv("MICROS_APPWD", "short")  # appwd needs 8..64 characters
    monkeypatch.setenv("MICROS_STAPWD", "fine-secret")
    with pytest.raises(MicrosError) as err:
        profiles.settings("default")
    assert "short" not in str(err.value).replace("shorter", "") and "appwd" in str(err.value)


@given(st.dictionaries(st.sampled_from(sorted(schema.params())), st.text(max_size=20), max_size=8))
def test_masked_never_shows_a_secret(cfg):
    shown = profiles.masked(cfg)
    for k in schema.secrets() & set(cfg):
        assert shown[k] == profiles.MASK
    assert {k: v for k, v in shown.items() if k not in schema.secrets()} == {
        k: v for k, v in cfg.items() if k not in schema.secrets()
    }


def test_profiles_note_settings_that_do_not_work_together():
    from microsctl.flashing import profiles

    text = profiles.describe("default", ["cron=True", "crontasks=*:*:*:0!system memfree"])
    assert "note: cron is on but timirq is off: the node will not arm cron (set timirq=True)" in text
    assert "note:" not in profiles.describe("heartbeat")
    assert profiles.notes({"extirq": True, "extirqcbf": "n/a"}) == ["extirq is on but extirqcbf is n/a: nothing to call"]
