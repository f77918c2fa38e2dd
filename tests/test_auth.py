"""Shell authentication (issue 10, point 4) on the real MicroPython unix port over TCP:
the node's challenge, what is served before the key is proven, wrong keys, replays,
the per-address backoff, the auth settings, and the host tools answering from the
secrets layer (microsctl.flashing.profiles)."""
import json
import os
import re
import socket
import subprocess
import sys
import time

import pytest

from microsctl import ROOT, MicrosError
from microsctl.flashing import profiles
from microsctl.node.client import AuthError, Shell, answer

KEY = "test-shell-key-1"
GREETING = re.compile(r"\AAuth: hmac-sha256 ([0-9a-f]{32})\n(node01 \$ )\Z")


@pytest.fixture(autouse=True)
def no_host_secrets(monkeypatch, tmp_path):
    """The developer's own secrets never reach these tests: each test says where its key is."""
    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    for k in ("MICROS_SECRETS", "MICROS_AUTHKEY", "MICROS_STAPWD", "MICROS_APPWD"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def anode(make_node):
    return make_node(sets=[f"authkey={KEY}"])


class Raw:
    """A bare TCP client: sees exactly what the node sends."""

    def __init__(self, port, src="127.0.0.1"):
        self.s = socket.create_connection(("127.0.0.1", port), 5, source_address=(src, 0))
        self.buf = b""
        self.greeting = self.until_prompt()

    def until_prompt(self):
        while True:
            text = self.buf.decode()
            if text.endswith("$ ") or text.endswith("Bye!\n"):
                self.buf = b""
                return text
            chunk = self.s.recv(4096)
            if not chunk:
                self.buf = b""
                return text
            self.buf += chunk

    @property
    def nonce(self):
        return GREETING.match(self.greeting).group(1)

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        return self.until_prompt()

    def closed(self):
        self.s.settimeout(2)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.s.close()


def info(port, key=KEY):
    with Shell(port, key=key) as sh:
        return json.loads(sh.cmd("system info >json"))


def test_greeting_carries_a_fresh_nonce_each_connection(anode):
    nonces = set()
    for _ in range(20):
        r = Raw(anode.port)
        assert GREETING.match(r.greeting), r.greeting
        nonces.add(r.nonce)
        r.close()
    assert len(nonces) == 20


def test_no_command_served_before_auth(anode):
    r = Raw(anode.port)
    assert r.cmd("hello").startswith("hello:node01:")
    from microsctl.flashing.schema import device_module

    assert r.cmd("version") == device_module("__init__").VERSION + "\nnode01 $ "
    assert r.cmd("hello >json").startswith("hello:node01:")  # served: the built-in ignores >json
    refused = ["system info", "system reboot", "reboot", "help", "conf", "configure", "dump", "devfid",
               "webrepl", "gpio RGB(1000, 0, 0)", "sim set_clock 0", "system gccollect >json", "auth",
               "authkey x", "", "noconf"]
    for line in refused:
        reply = r.cmd(line)
        assert reply.startswith("Error: auth required"), (line, reply)
    # nothing happened: the LED is off, the settings unchanged, no reboot
    with Shell(anode.port, key=KEY) as sh:
        assert json.loads(sh.cmd("sim pins >json"))["pwm"].get("25", [0, 0])[1] == 0
        assert sh.cmd("system info").count("uptime_s") == 1
    assert anode.boots == 1
    assert r.cmd("exit") == "Bye!\n" and r.closed()


def test_right_key_opens_the_shell(anode):
    r = Raw(anode.port)
    assert r.cmd("auth " + answer(KEY, r.nonce)) == "Authenticated\nnode01 $ "
    assert r.cmd("system memfree").startswith("CPU[Hz]: ")
    r.close()
    with Shell(anode.port, key=KEY) as sh:
        assert sh.authenticated and sh.cmd("hello").startswith("hello:node01:")


def test_wrong_key_is_refused_and_counted(anode):
    r = Raw(anode.port)
    assert r.cmd("auth " + answer("not-the-key-1", r.nonce)) == "Error: auth failed\nBye!\n"
    assert r.closed()
    time.sleep(1.1)  # past the first lockout
    with pytest.raises(AuthError, match="refused the shell key"):
        Shell(anode.port, key="not-the-key-2")
    time.sleep(2.1)
    got = info(anode.port)
    assert got["auth"] == "on" and got["auth_fails"] == 2


def test_replayed_response_is_refused(anode):
    """A response recorded for one connection's nonce does not open another."""
    first = Raw(anode.port)
    recorded = "auth " + answer(KEY, first.nonce)
    assert first.cmd(recorded) == "Authenticated\nnode01 $ "
    first.close()
    second = Raw(anode.port)
    assert second.nonce != first.nonce
    assert second.cmd(recorded) == "Error: auth failed\nBye!\n"
    # and the recorded response is no good a second time on its own connection either
    third = Raw(anode.port)
    reply = third.cmd("auth " + answer(KEY, first.nonce))
    assert reply.startswith("Error: auth"), reply


def test_brute_force_backs_off_exponentially_per_address(anode):
    r = Raw(anode.port)
    assert r.cmd("auth " + "0" * 64) == "Error: auth failed\nBye!\n"
    # locked for 1 s: even the right answer is not looked at
    r = Raw(anode.port)
    assert r.cmd("auth " + answer(KEY, r.nonce)) == "Error: auth locked for 1 s after failed attempts\nnode01 $ "
    # another address is not locked out by this one's failures
    other = Raw(anode.port, src="127.0.0.2")
    assert other.cmd("auth " + answer(KEY, other.nonce)) == "Authenticated\nnode01 $ "
    time.sleep(1.1)
    assert r.cmd("auth " + "1" * 64) == "Error: auth failed\nBye!\n"  # failure 2: locked 2 s
    time.sleep(1.1)
    r = Raw(anode.port)
    assert r.cmd("auth " + answer(KEY, r.nonce)).startswith("Error: auth locked for 1 s")  # 2 s lockout
    time.sleep(1.0)
    assert r.cmd("auth " + answer(KEY, r.nonce)) == "Authenticated\nnode01 $ "
    got = json.loads(r.cmd("system info >json").rsplit("\n", 1)[0])
    assert got["auth_fails"] == 2 and got["auth_locked"] == 2


def test_backoff_table_is_bounded(anode):
    """Failures from 64 addresses: the record of them does not grow the heap (a bounded table)."""
    def free():
        with Shell(anode.port, key=KEY, host="127.0.0.1") as sh:
            return json.loads(sh.cmd("sim heap >json"))["free"]

    def fail_from(n, first):
        for i in range(first, first + n):
            r = Raw(anode.port, src=f"127.0.{i // 250}.{i % 250 + 2}")
            assert r.cmd("auth " + "2" * 64) == "Error: auth failed\nBye!\n"
            r.close()

    fail_from(8, 0)  # the table's rows are in use
    before = free()
    fail_from(64, 8)
    after = free()
    assert after >= before - 256, (before, after)  # unbounded: 64 more records, about 4 KB
    assert info(anode.port)["auth_fails"] == 72


def test_auth_settings_need_an_authenticated_session(make_node):
    open_node = make_node()  # no key: auth off, nobody is authenticated
    with Shell(open_node.port) as sh:
        assert not sh.authenticated
        sh.cmd("conf")
        assert sh.cmd(f"authkey {KEY}").startswith("Error: authkey can be changed only in an authenticated session")
        assert sh.cmd("auth False").startswith("Error: auth can be changed only")
        assert sh.cmd("authkey") == "*****"
    assert "Auth:" not in Raw(open_node.port).greeting  # still open: nothing was set

    node = make_node(sets=[f"authkey={KEY}"])
    with Shell(node.port, key=KEY) as sh:
        sh.cmd("conf")
        assert "authkey: *****" in sh.cmd("dump auth")
        assert sh.cmd("authkey new-shell-key-2") == "Saved"
        assert KEY not in sh.cmd("dump") and "new-shell-key-2" not in sh.cmd("dump")
    with pytest.raises(AuthError):
        Shell(node.port, key=KEY)  # the old key no longer opens it
    time.sleep(1.1)
    with Shell(node.port, key="new-shell-key-2") as sh:
        sh.cmd("conf")
        assert sh.cmd("auth False") == "Saved"
    r = Raw(node.port)
    assert r.greeting == "node01 $ " and r.cmd("system memfree").startswith("CPU[Hz]: ")
    log = node.log.read_text()
    assert KEY not in log and "new-shell-key-2" not in log


def test_auth_module_is_not_loaded_when_auth_is_off(make_node):
    off = make_node()
    with Shell(off.port) as sh:
        assert json.loads(sh.cmd("system info >json"))["auth"] == "off"
        assert "micros.auth" not in json.loads(sh.cmd("sim modules >json"))
    on = make_node(sets=[f"authkey={KEY}"])
    with Shell(on.port, key=KEY) as sh:
        assert "micros.auth" in json.loads(sh.cmd("sim modules >json"))


# -- the host tools: the key from the secrets layer --------------------------------------

def inv(*args, env=None):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=env)


def _env(**kw):
    e = {k: v for k, v in os.environ.items() if not k.startswith("MICROS_")}
    e.update(kw)
    return e


def test_invoke_shell_answers_from_env_and_secrets_file(anode, tmp_path):
    res = inv("shell", "--port", str(anode.port), "-c", "system info", env=_env(MICROS_AUTHKEY=KEY))
    assert res.returncode == 0 and "auth: on" in res.stdout, res.stderr
    assert KEY not in res.stdout + res.stderr
    secrets = tmp_path / "node.secrets.json"
    secrets.write_text(json.dumps({"authkey": KEY}))
    res = inv("shell", "--port", str(anode.port), "-c", "hello", env=_env(MICROS_SECRETS=str(secrets)))
    assert res.returncode == 0 and res.stdout.startswith("hello:node01:"), res.stderr
    # no key anywhere: one line that says where to put it, no prompt for it
    res = inv("shell", "--port", str(anode.port), "-c", "hello", env=_env())
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"error: the node at 127.0.0.1:{anode.port} asks for its shell key: set MICROS_AUTHKEY "
        "or add authkey to secrets.json (the key it was flashed with)"]
    # a wrong key: refused, and the key given is not printed
    res = inv("shell", "--port", str(anode.port), "-c", "hello", env=_env(MICROS_AUTHKEY="wrong-key-77"))
    assert res.returncode == 1 and "refused the shell key" in res.stderr
    assert "wrong-key-77" not in res.stdout + res.stderr


def test_shell_class_reads_the_secrets_file(anode, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"authkey": KEY}))
    monkeypatch.setattr(profiles, "SECRETS_FILE", secrets)
    with Shell(anode.port) as sh:
        assert sh.authenticated and sh.cmd("hello").startswith("hello:")


def test_invoke_sim_puts_the_key_from_the_secrets_layer_on_the_node(tmp_path):
    from microsctl.node.sim import SIM_ROOT, free_port

    port = free_port()
    name = f"authtest{port}"
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "sim", "--node", name, "--port", str(port), "--fresh"],
                            cwd=ROOT, env=_env(MICROS_AUTHKEY=KEY), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        end = time.monotonic() + 20
        while True:
            try:
                r = Raw(port)
                break
            except OSError:
                assert time.monotonic() < end and proc.poll() is None, "invoke sim did not start its node"
                time.sleep(0.1)
        assert GREETING.match(r.greeting)  # auth on by default for a node given a key
        assert r.cmd("system info").startswith("Error: auth required")
        with Shell(port, key=KEY) as sh:
            assert sh.cmd("hello").startswith("hello:node01:")
    finally:
        os.killpg(proc.pid, 2)
        out = proc.communicate(timeout=10)[0]
        import shutil

        shutil.rmtree(SIM_ROOT / name, ignore_errors=True)
    assert KEY not in out


# -- auth off only when a profile says so ------------------------------------------------

@pytest.fixture
def open_profile(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    (d / "default.json").write_text((profiles.PROFILES / "default.json").read_text())
    (d / "open.json").write_text(json.dumps({"description": "lab bench, no shell key",
                                             "settings": {"auth": False}}))
    monkeypatch.setattr(profiles, "PROFILES", d)
    return d


def test_flashing_needs_a_key_unless_the_profile_turns_auth_off(open_profile, monkeypatch):
    monkeypatch.setenv("MICROS_STAPWD", "wifi-secret-9")
    monkeypatch.setenv("MICROS_APPWD", "admin-secret-9")
    with pytest.raises(MicrosError, match="secret authkey is missing: set MICROS_AUTHKEY"):
        profiles.settings("default")
    cfg = profiles.settings("open")
    assert cfg["auth"] is False and cfg["authkey"] == "n/a"
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)
    cfg = profiles.settings("default")
    assert cfg["auth"] is True and cfg["authkey"] == KEY  # on by default for a node given a key


def test_profile_with_auth_off_serves_without_a_key(open_profile, make_node, monkeypatch):
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)  # a key in the secrets layer, but the profile says off
    node = make_node(profile="open")
    assert node.config()["auth"] is False
    r = Raw(node.port)
    assert r.greeting == "node01 $ "
    assert json.loads(r.cmd("system info >json").rsplit("\n", 1)[0])["auth"] == "off"
    on = make_node(profile="default")
    assert GREETING.match(Raw(on.port).greeting)
