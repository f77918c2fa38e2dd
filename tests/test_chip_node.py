"""The node's scenarios (boot, shell, scheduler, Load Modules, network, reboot, rescue) on a
virtual board that impersonates each chip (invoke sim --board ...): the device code must
hold up to what MicroPython v1.28.0 does there. esp8266 and esp32 run by default; the C3 and
S3 under the `allchips` marker (python -m pytest -m allchips)."""
import json
import socket
import subprocess
import threading
import time

import pytest

from microsctl.firmware import boards
from microsctl.node.client import Shell
from microsctl.node.sim import free_port

CHIPS = ["esp8266", "esp32", pytest.param("esp32c3", marks=pytest.mark.allchips),
         pytest.param("esp32s3", marks=pytest.mark.allchips)]
T_SET = 1794787200  # 2026-11-15 00:00:00 UTC, as the host counts


def clients_of(chip):
    text = (boards.get(chip).dir / "micros_board.py").read_text()
    return int(text.split("CLIENTS = const(")[1].split(")")[0])


def wait_for(pred, timeout=6.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("chip", CHIPS)
def test_boot_shell_and_load_modules(make_node, chip):
    n = make_node(board=chip)
    with Shell(n.port) as s:
        assert s.cmd("hello").startswith("hello:node01:")
        info = json.loads(s.cmd("system info >json"))
        assert info["nwmd"] == "AP" and not info["safemode"]
        assert s.cmd("gpio RGB(100,200,300)") == "SET RGB"
        b = boards.get(chip)
        pwm = json.loads(s.cmd("sim pins >json"))["pwm"]
        assert set(pwm) == {str(b.pins[k]) for k in ("pwm_1", "pwm_2", "pwm_3")}
        assert s.cmd("gpio RGB_deinit") == "RGB OFF"
        # the ESP ports start their clock at 2000-01-01 and only NTP (STA mode) sets it
        assert s.cmd("system time").startswith("2000-01-01 ")
        assert "clock not set" in s.cmd("system time")
        # boostmd: the chip's top speed (esp8266/modmachine.c 160 MHz; esp32/modmachine.c 240, C3 160)
        top = 240 if chip in ("esp32", "esp32s3") else 160
        assert "CPU[Hz]: %d\n" % (top * 1000000) in s.cmd("system memfree")


@pytest.mark.parametrize("chip", CHIPS)
def test_servo_and_rgb_share_one_pwm_frequency_on_esp8266(make_node, chip):
    """esp8266/esppwm.c keeps one frequency for all channels: Servo (50 Hz) would retune the
    RGB LED (1 kHz); the device refuses with a message instead. Other chips run both."""
    n = make_node(board=chip)
    with Shell(n.port) as s:
        assert s.cmd("gpio RGB(500,500,500)") == "SET RGB"
        out = s.cmd("gpio Servo(90)")
        pwm = json.loads(s.cmd("sim pins >json"))["pwm"]
        rgb = str(boards.get(chip).pins["pwm_1"])
        if chip == "esp8266":
            assert out.startswith("Error: ValueError: this board has one PWM frequency for all pins: ")
            assert "RGB_deinit" in out
            assert pwm[rgb][0] == 1000  # the LED keeps its frequency
            assert s.cmd("gpio RGB_deinit") == "RGB OFF"
            assert s.cmd("gpio Servo(90)") == "SET SERVO 90"
        else:
            assert out == "SET SERVO 90"
            assert pwm[rgb][0] == 1000 and pwm[str(boards.get(chip).pins["pwm_0"])][0] == 50


@pytest.mark.parametrize("chip", CHIPS)
def test_scheduler_holds_cron_until_the_clock_is_set(make_node, chip):
    """A clock from 2000 is not the time: cron fires nothing and `system time` / `sched status`
    say so; once the clock is set cron goes on from the new time."""
    n = make_node(board=chip, sets=["timirq=True", "timirqseq=200", "timirqcbf=system heartbeat", "cron=True",
                                    "crontasks=*:*:*:*!system gccollect", "gmttime=0"])
    with Shell(n.port) as s:
        time.sleep(1.5)
        st = s.cmd("sched status")
        assert "cron: held: the clock is not set" in st and "runs 0," in st.split("cron:")[1]
        assert "runs 0," not in st.split("timirq:")[1].split("\n")[0]  # the timer is not held
        s.cmd("sim set_clock %d" % T_SET)
        assert wait_for(lambda: "runs 0," not in s.cmd("sched status").split("cron:")[1])
        assert s.cmd("system time") == "2026-11-15 00:00:%02d" % (int(s.cmd("sim clock")) - T_SET) or \
            "clock not set" not in s.cmd("system time")


@pytest.mark.parametrize("chip", CHIPS)
def test_external_irq_only_on_an_irq_capable_pin(make_node, chip):
    """esp8266/machine_pin.c: GPIO16 (simple_0 there) has no interrupt and raises OSError."""
    n = make_node(board=chip, sets=["extirq=True", "extirqcbf=system heartbeat", "extirqpin=simple_0",
                                    "timirq=True", "timirqcbf=system heartbeat"])
    with Shell(n.port) as s:
        st = s.cmd("sched status")
        assert "timirq: every" in st
        if chip == "esp8266":
            assert "note01: extirq: pin simple_0: pin does not have IRQ capabilities: not armed" in st
            assert "extirq:" not in st.replace("note01: extirq", "")
        else:
            assert "extirq: simple_0 (gpio %d)" % boards.get(chip).pins["simple_0"] in st
            s.cmd("sim edge simple_0 1")
            assert wait_for(lambda: "runs 1," in s.cmd("sched status").split("extirq:")[1])


@pytest.mark.parametrize("chip", CHIPS)
def test_wifi_wait_runs_its_window_while_the_driver_retries(make_node, monkeypatch, chip):
    """esp32/network_wlan.c reports STAT_NO_AP_FOUND after the first failed attempt and keeps
    retrying: a router that comes up 2.5 s after the node is still joined in STA mode."""
    monkeypatch.setenv("MICROS_SIM_WIFI", "homenet:secret99@2500")
    n = make_node(board=chip, sets=["staessid=homenet", "stapwd=secret99"], start=False)
    n.start(timeout=20)
    with Shell(n.port) as s:
        assert s.cmd("conf") == ""
        assert s.cmd("nwmd") == "STA"
    assert "net: STA 127.0.0.1" in n.log.read_text()


@pytest.mark.parametrize("chip", CHIPS)
def test_shell_client_limit_fits_the_chip(make_node, chip):
    from tests.test_harden import connect, read_reply

    n = make_node(board=chip)
    limit = clients_of(chip)
    # one address holds all slots but one (micros.shell._admit): the last from another
    socks = [connect(n.port) for _ in range(limit - 1)] + [connect(n.port, "127.0.0.2")]
    try:
        for s in socks:
            read_reply(s)
            s.sendall(b"hello\n")
            assert read_reply(s)[0].startswith("hello:")
        # one too many: served, and the longest-idle connection gives up its slot
        extra = connect(n.port, "127.0.0.3")
        socks.append(extra)
        read_reply(extra)
        extra.sendall(b"hello\n")
        assert read_reply(extra)[0].startswith("hello:")
        text, closed = read_reply(socks[0])
        assert closed and "Bye! (slot given to a new client)" in text
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("chip", CHIPS)
def test_reboot_keeps_the_set_clock(make_node, chip):
    n = make_node(board=chip)
    with Shell(n.port) as s:
        s.cmd("sim set_clock %d" % T_SET)
        assert s.cmd("reboot") == "Reboot"
    n.wait_ready(timeout=10, boots=2)
    with Shell(n.port) as s:
        t = int(s.cmd("sim clock"))
        # ESP32: the RTC runs on; ESP8266: the tick restarts, the clock falls back by the uptime
        assert T_SET - 10 <= t <= T_SET + 10
        assert "clock not set" not in s.cmd("system time")


def _boot_until(n, text, timeout=10):
    """Boot the node's process; return (proc, output so far) once `text` was printed."""
    proc = subprocess.Popen(n.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=n.env(), text=True)
    out = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    for line in proc.stdout:
        out.append(line)
        if text in line:
            break
    timer.cancel()
    return proc, "".join(out)


def _webrepl_login(port, password):
    with socket.create_connection(("127.0.0.1", port), 5) as c:
        assert c.recv(64) == b"Password: "
        c.sendall(password.encode() + b"\n")
        got = b""
        while True:
            chunk = c.recv(256)
            if not chunk:
                return got
            got += chunk


@pytest.mark.parametrize("chip", CHIPS)
def test_webrepl_rescue_when_the_shell_cannot_start(make_node, monkeypatch, chip):
    """The shell fails as it starts (out of memory; a taken port no longer fails it, it falls
    back, tests/test_guard.py): core._rescue starts WebREPL with appwd (extmod/modwebrepl.c:
    with no password it raises TypeError) and the node stays reachable there."""
    wport = free_port()
    monkeypatch.setenv("MICROS_SIM_WEBREPL", str(wport))
    n = make_node(board=chip, sets=["appwd=Rescue99"], start=False)
    # shadows the board's micros_board module, which shell.serve() imports
    (n.fs / "micros_board.py").write_text("raise MemoryError('memory allocation failed')\n")
    proc, out = _boot_until(n, "WebREPL server started")
    try:
        assert "MemoryError: memory allocation failed" in out, out
        assert "WebREPL server started on http://127.0.0.1:%d/" % wport in out, out
        assert _webrepl_login(wport, "wrong") == b"\r\nAccess denied\r\n"
        assert _webrepl_login(wport, "Rescue99") == b"\r\nWebREPL connected\r\n>>> "
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("chip", CHIPS)
def test_core_missing_rescues_over_webrepl(make_node, monkeypatch, tmp_path, chip, coreless_micropython):
    wport = free_port()
    monkeypatch.setenv("MICROS_SIM_WEBREPL", str(wport))
    empty = tmp_path / "nocore"
    empty.mkdir()
    n = make_node(board=chip, code=empty, start=False,  # the default appwd ADmin123 fits 4..9
                  micropython=coreless_micropython)
    proc, out = _boot_until(n, "WebREPL server started")
    try:
        assert "micrOS core missing" in out and "WebREPL server started" in out, out
        assert _webrepl_login(wport, "ADmin123") == b"\r\nWebREPL connected\r\n>>> "
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("chip", CHIPS)
def test_no_soft_reset_loop_when_nothing_can_rescue(make_node, tmp_path, chip, coreless_micropython):
    """esp32/main.c soft-resets on a SystemExit from main.py and runs main.py again: a rescue
    that exits would loop forever. With no core and no webrepl the node must stop once."""
    empty = tmp_path / "nocore"
    empty.mkdir()
    n = make_node(board=chip, code=empty, start=False, micropython=coreless_micropython)
    (n.fs / "webrepl.py").write_text("raise ImportError('no webrepl in this build')\n")
    log = tmp_path / "run.log"
    with open(log, "wb") as f:
        th = threading.Thread(target=n.run, kwargs={"stdout": f}, daemon=True)
        th.start()
        th.join(4)
    n.stop()
    assert n.boots == 1, log.read_text()
    assert "no WebREPL rescue" in log.read_text()
