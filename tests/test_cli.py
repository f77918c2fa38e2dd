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
        assert res.returncode == 1 and res.stderr.strip() == "error: --port takes a TCP port number (1..65535), not 'http'"
    finally:
        import shutil

        shutil.rmtree(node)
    res = inv("sim", "--profile", "nosuch")
    assert res.returncode == 1 and "unknown profile 'nosuch': valid profiles are" in res.stderr
    res = inv("sim", "--set", "justakey")
    assert res.returncode == 1 and "--set takes KEY=VALUE, not 'justakey'" in res.stderr


# -- every task's --help, enumerated from the collection ------------------------------

import os  # noqa: E402
import pty  # noqa: E402
import re  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from microsctl.cli import ns  # noqa: E402


def _flat(text):
    return " ".join(text.split())


@pytest.mark.parametrize("name", sorted(ns.task_names))
def test_every_task_help_works_and_explains_every_parameter(name):
    """`invoke <task> --help` as a user types it: a task whose --board was a required positional
    argument took --help as the board's name (invoke's parser fills positionals first)."""
    res = inv(name, "--help")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    text = _flat(res.stdout)
    assert text.startswith(f"Usage: inv[oke] [--core-opts] {name}")
    for arg in ns[name].get_arguments():
        assert arg.help, f"invoke {name}: --{arg.name} has no help text"
        assert f"--{arg.name.strip('_').replace('_', '-')}" in text  # from_ is --from
        assert _flat(arg.help) in text


# -- numbers given as options -----------------------------------------------------------

# every numeric option of every task, with what else the task needs to get that far
NUMERIC = [
    ("shell", "port", []),
    ("sim", "port", []),
    ("sim", "heap", []),
    ("build", "jobs", ["--board", "esp8266", "--dry-run"]),
    ("flash", "baud", ["--board", "esp8266", "--port", "/dev/null"]),
    ("provision", "baud", ["--board", "esp8266", "--port", "/dev/null"]),
    ("fleet-sim", "count", []),
    ("fleet-sim", "port", ["--count", "2"]),
    ("fleet-sim", "heap", ["--count", "2"]),
    ("scan", "port", ["--hosts", "/nonexistent"]),
    ("update", "baud", ["--board", "esp8266", "--port", "/dev/null"]),
    ("ota", "port", []),
    ("ota", "timeout", []),
    ("ota", "wave", ["--all"]),
]


@pytest.mark.parametrize("name,opt,rest", NUMERIC, ids=[f"{n}--{o}" for n, o, _ in NUMERIC])
@pytest.mark.parametrize("bad", ["abc", "-5", "1.5"])
def test_a_bad_number_is_one_line(name, opt, rest, bad):
    res = inv(name, *rest, f"--{opt}={bad}")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --{opt} takes "), res.stderr
    assert lines[0].endswith(f", not {bad!r}")


def test_numeric_options_are_all_checked_by_the_task():
    """invoke converts an option with an int default while parsing, and a typo there ends in a
    ValueError traceback; numbers arrive as text and the task checks them (cli.numbers)."""
    declared = set()
    for name in ns.task_names:
        body = ns[name].body
        declared |= {(name, opt) for opt in getattr(body, "numbers", ())}
        for arg in ns[name].get_arguments():
            assert arg.kind is not int, f"invoke {name} --{arg.name}: an int default; use cli.numbers"
    assert declared == {(n, o) for n, o, _ in NUMERIC}


# -- board spellings ---------------------------------------------------------------------------

@pytest.mark.parametrize("spelling,name", [
    ("esp32-c3", "ESP32_GENERIC_C3"), ("esp32_c3", "ESP32_GENERIC_C3"), ("ESP32_GENERIC_C3", "ESP32_GENERIC_C3"),
    ("ESP32-C3", "ESP32_GENERIC_C3"), ("esp32-s3", "ESP32_GENERIC_S3"), ("esp32s3", "ESP32_GENERIC_S3"),
    ("esp32_generic_s3", "ESP32_GENERIC_S3"), ("ESP8266", "ESP8266_GENERIC"), ("esp32", "ESP32_GENERIC"),
])
def test_board_spellings_name_the_same_board(spelling, name):
    from microsctl.firmware import boards

    assert boards.get(spelling).name == name


def test_board_spellings_on_the_command_line():
    res = inv("build", "--board", "esp32-c3", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "ESP32_GENERIC_C3" in res.stdout + res.stderr
    res = inv("flash", "--board", "esp32-s3", "--firmware", "/nonexistent.bin")
    assert res.returncode == 1 and "unknown board" not in res.stderr
    res = inv("build", "--board", "esp32-c9")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: unknown board 'esp32-c9': valid boards are ESP32_GENERIC (esp32), ESP32_GENERIC_C3 (esp32c3), "
        "ESP32_GENERIC_S3 (esp32s3), ESP8266_GENERIC (esp8266), sim (virtual), unix (unix-frozen)"]
    res = inv("fetch")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[0].startswith("error: --board is required: valid boards are ESP32_GENERIC")


def test_no_two_boards_share_a_spelling():
    from microsctl.firmware import boards

    keys = [boards.normalise(k) for b in boards.all_boards() for k in (b.name, *b.aliases)]
    assert len(keys) == len(set(keys))


# -- tables -------------------------------------------------------------------------------------

def test_boards_and_profiles_are_tables_with_headers():
    from microsctl.firmware import boards
    from microsctl.flashing import profiles

    res = inv("boards")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["Board", "Aliases", "Chip", "Flash", "Firmware", "Filesystem", "MPY", "Variants"]
    for b in boards.all_boards():
        row = next(ln for ln in lines if ln.split()[:1] == [b.name])
        assert row.split()[1:4] == ["/".join(b.aliases), b.chip, b.flash_size]
    assert "FLASH_2M_ROMFS" in res.stdout
    res = inv("profiles")
    assert res.returncode == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["Profile", "Description"]
    for n in profiles.names():
        assert any(ln.split()[:1] == [n] for ln in lines[1:])


# -- the interactive shell on a terminal ------------------------------------------------------

class Term:
    """`invoke ...` on a pseudo-terminal, as a user runs it: readline on, Ctrl-C a real SIGINT."""

    def __init__(self, *args, env=None):
        argv = INVOKE + list(args)
        env = {**os.environ, "TERM": "dumb", **(env or {})}
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes invoke at once
            try:
                os.chdir(ROOT)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd, self.out, self.rc, self.closed, self.seen = pid, fd, "", None, False, 0

    def _read(self, timeout):
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                data = b""
            self.out += data.decode(errors="replace")
            return bool(data)
        return True

    def expect(self, pattern, timeout=15):
        """Wait for pattern in what came after the last match (so a prompt is never matched twice)."""
        end = time.monotonic() + timeout
        while True:
            m = re.compile(pattern).search(self.out, self.seen)
            if m or time.monotonic() > end or not self._read(0.1):
                break
        assert m, f"no {pattern!r} in {self.out[self.seen:]!r}"
        self.seen = m.end()
        return m

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05) and select.select([self.fd], [], [], 0)[0]:
                    pass
                self.rc = os.waitstatus_to_exitcode(status)
                return self.rc
        self.close()
        pytest.fail(f"still running after {timeout} s: {self.out!r}")

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.rc is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ProcessLookupError:
                pass
        os.close(self.fd)


@pytest.fixture
def term(tmp_path):
    opened = []

    def make(*args):
        t = Term(*args, env={"XDG_STATE_HOME": str(tmp_path / "state")})
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.close()


def _last_lines(text, n=1):
    return [ln for ln in text.replace("\r", "").splitlines() if ln.strip()][-n:]


def test_shell_says_when_the_node_goes_away_while_it_waits(node, term):
    t = term("shell", "--port", str(node.port))
    t.expect(r"node01 \$ ")
    node.stop()  # the node dies while the user is thinking
    assert t.wait() == 1
    assert _last_lines(t.out) == [
        f"error: the node at 127.0.0.1:{node.port} closed the connection (it rebooted, crashed or was stopped); "
        f"reconnect with: invoke shell --port {node.port}"]


def test_shell_says_when_the_node_reboots(node, term):
    t = term("shell", "--port", str(node.port))
    t.expect(r"node01 \$ ")
    t.send("reboot\r")
    assert t.wait() == 1
    assert "Reboot" in t.out
    assert _last_lines(t.out)[0].startswith(f"error: the node at 127.0.0.1:{node.port} closed the connection")


def test_shell_shows_why_an_idle_session_was_closed(make_node, term):
    n = make_node(sets=["soctout=2"])
    t = term("shell", "--port", str(n.port))
    t.expect(r"node01 \$ ")
    assert t.wait() == 1  # nobody typed: the node's idle sweep (frozen/micros/shell.py _sweep) closed it
    assert _last_lines(t.out, 2) == [
        "Bye! (idle for 2 s)",
        f"error: the node at 127.0.0.1:{n.port} closed the connection (it rebooted, crashed or was stopped); "
        f"reconnect with: invoke shell --port {n.port}"]


def test_shell_ctrl_c_leaves_with_a_newline_and_status_130(node, term):
    t = term("shell", "--port", str(node.port))
    t.expect(r"node01 \$ ")
    time.sleep(0.3)  # a person's pause: readline is waiting for a key, not still drawing the prompt
    t.send("\x03")  # Ctrl-C on the terminal: SIGINT from the line discipline
    assert t.wait() == 130
    assert "Traceback" not in t.out
    assert re.search(r"node01 \$ (\^C)?\r?\n$", t.out), t.out


def test_shell_history_kept_across_sessions_without_secrets(node, term, tmp_path):
    hist = tmp_path / "state" / "micros" / "shell_history"
    t = term("shell", "--port", str(node.port))
    for line in ("hello", "conf", "stapwd Hunter2secret", "appwd:Sw0rdfish9", "noconf", "system heartbeat"):
        t.expect(r"\$ $")
        t.send(line + "\r")
    t.expect(r"\$ $")
    t.send("\x04")  # Ctrl-D: leave
    assert t.wait() == 0
    kept = hist.read_text()
    assert "Hunter2secret" not in kept and "Sw0rdfish9" not in kept
    assert [ln for ln in kept.splitlines() if not ln.startswith("_HiStOrY")] == [
        "hello", "conf", "noconf", "system\\040heartbeat" if "\\040" in kept else "system heartbeat"]
    t2 = term("shell", "--port", str(node.port))
    t2.expect(r"node01 \$ ")
    t2.send("\x1b[A\r")  # Up, Enter: the last line of the previous session runs again
    t2.expect(r"heartbeat[^\n]*\n[^\n]*node01 \$ ")
    t2.send("\x04")
    assert t2.wait() == 0
    assert t2.out.count("system heartbeat") == 1  # shown once, recalled from history


# -- invoke sim -----------------------------------------------------------------------------------

def _sim(*args):
    """`invoke sim ...` in the foreground, in its own process group (Ctrl-C reaches the node too)."""
    import subprocess

    return subprocess.Popen(INVOKE + ["sim", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except Exception:  # noqa: BLE001 - the group is killed below
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_sim_on_a_busy_port_is_one_line():
    from microsctl.node.sim import SIM_ROOT

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        try:
            res = inv("sim", "--node", "clibusy", "--fresh", "--port", str(port))
        finally:
            shutil.rmtree(SIM_ROOT / "clibusy", ignore_errors=True)
    assert res.returncode == 1
    assert "Traceback" not in res.stdout + res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use (Address already in use): "
        f"stop what listens there, or pick another port with --port"]


def test_sim_flash_names_the_profile_the_image_was_flashed_with(tmp_path):
    from microsctl.node.sim import SIM_ROOT
    from tests.conftest import free_port

    img = tmp_path / "lamp.img"
    res = inv("flash", "--board", "sim", "--port", str(img), "--profile", "lamp", "--set", f"socport={free_port()}")
    assert res.returncode == 0, res.stderr
    proc = _sim("--flash", str(img), "--node", "cliflash", "--profile", "gpio")
    try:
        out = ""
        for line in proc.stdout:
            out += line
            if "[sim] shell:" in line:
                break
    finally:
        _stop(proc)
        shutil.rmtree(SIM_ROOT / "cliflash", ignore_errors=True)
    assert f"[sim] node cliflash: filesystem in the flash image {img}, flashed with profile lamp" in out
    assert "--profile gpio is not used: the image keeps its own settings (--fresh flashes it anew)" in out


def test_flash_image_profile_record(tmp_path):
    """flash and provision on the virtual board record the profile beside the image; an image
    with no record says so rather than guessing."""
    from microsctl.firmware import boards
    from microsctl.flashing import flash, imagemeta

    img = tmp_path / "node.img"
    b = boards.get("sim")
    flash.flash(b, img, "lamp")
    assert imagemeta.recorded(img)["profile"] == "lamp"
    flash.provision(b, img, "heartbeat", backup_to=tmp_path / "bk")
    assert imagemeta.recorded(img)["profile"] == "heartbeat"
    assert imagemeta.describe(img).startswith("flashed with profile heartbeat (invoke provision, ")
    imagemeta.meta_path(img).unlink()
    assert imagemeta.describe(img).startswith("profile not known")
