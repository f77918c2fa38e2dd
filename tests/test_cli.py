"""The invoke command line, run as a user runs it."""
import subprocess
import sys

from microsctl import ROOT

INVOKE = [sys.executable, "-m", "invoke"]


def inv(*args, **kw):
    return subprocess.run(INVOKE + list(args), cwd=ROOT, capture_output=True, text=True, timeout=60, **kw)


def test_list_and_help():
    out = inv("--list").stdout
    for name in ("sim", "shell", "bench"):
        assert name in out
    helptext = inv("sim", "--help").stdout
    for opt in ("--profile", "--port", "--heap", "--set", "--fresh"):
        assert opt in helptext


def test_shell_one_shot(node):
    res = inv("shell", "--port", str(node.port), "-c", "hello")
    assert res.returncode == 0 and res.stdout.startswith("hello:node01:")
    res = inv("shell", "--port", str(node.port), "--command", "nosuch thing")
    assert res.returncode == 1
    assert res.stdout.strip() == "Error: unknown module nosuch (help lists them)"
    res = inv("shell", "--port", str(node.port), "-c", "conf\ndevfid cli01\nnoconf\nhello")
    assert res.returncode == 0 and "Saved" in res.stdout and "hello:cli01:" in res.stdout


def test_shell_without_a_node_says_so_in_one_line(tmp_path):
    from tests.conftest import free_port

    port = free_port()
    res = inv("shell", "--port", str(port), "-c", "hello")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"error: no micrOS shell at 127.0.0.1:{port} (Connection refused); is the node up?"]


def test_interactive_shell(node):
    res = inv("shell", "--port", str(node.port), input="hello\nsystem nope\nexit\n")
    assert res.returncode == 0
    assert "hello:node01:" in res.stdout and "Error: system has no function nope" in res.stdout
    assert "Bye!" in res.stdout


def test_sim_refuses_bad_settings_before_touching_the_node(tmp_path):
    from microsctl.node.sim import SIM_ROOT

    node = SIM_ROOT / "clitest"
    fs = node / "fs"
    fs.mkdir(parents=True, exist_ok=True)
    (fs / "node_config.json").write_text('{"devfid": "kept"}')
    try:
        res = inv("sim", "--profile", "lamp", "--node", "clitest", "--set", "socport=0", "--fresh")
        assert res.returncode == 1
        assert res.stderr.strip() == "error: setting socport must be 1..65535"
        assert (fs / "node_config.json").read_text() == '{"devfid": "kept"}'  # --fresh did not wipe it
        res = inv("sim", "--node", "clitest", "--port", "http")
        assert res.returncode == 1 and res.stderr.strip() == "error: --port takes a TCP port number, not 'http'"
    finally:
        import shutil

        shutil.rmtree(node)
    res = inv("sim", "--profile", "nosuch")
    assert res.returncode == 1 and "unknown profile 'nosuch': valid profiles are" in res.stderr
    res = inv("sim", "--set", "justakey")
    assert res.returncode == 1 and "--set takes KEY=VALUE, not 'justakey'" in res.stderr
