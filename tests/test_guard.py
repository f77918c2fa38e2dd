"""A node cannot be bricked from the shell: the boot-loop guard, the shell port's fallback and
the settings checked when they are set (frozen/micros/guard.py), on the real MicroPython.

The boot-loop count is kept in the RTC user memory (frozen/micros/boot.py), modelled in ports/unix/machine.py after
esp8266/machine_rtc.c and esp32/machine_rtc.c: it survives machine.reset(), not a power cut
(the sim supervisor removes it when it starts a node, microsctl/node/sim.py)."""
import json
import socket
import time

import pytest

from microsctl.node.client import Shell
from tests.conftest import free_port

DEFAULT_PORT = 9008  # socport's default, where the shell falls back


def info(s):
    return json.loads(s.cmd("system info >json"))


def hold(port):
    """Listen on 127.0.0.1:port as another program would; None if something already does."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    s.listen(1)
    return s


def shell_on(n, port, timeout=20):
    """A Shell on port once the node serves there (the node's own port may be held by a test)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert n.proc is None or n.proc.poll() is None or n.rc == 75, f"node exited ({n.rc}): {n.log.read_text()}"
        try:
            s = Shell(port, timeout=5)
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.1)
            continue
        if s.cmd("hello").startswith("hello:"):
            return s
        s.close()
    raise AssertionError(f"no shell on {port}: {n.log.read_text()}")


def test_a_boothook_that_reboots_ends_in_safe_mode_and_a_clean_uptime_clears_it(make_node):
    n = make_node(sets=["boothook=system reboot"], start=False)
    n.fs.joinpath("LM_probe.py").write_text("def hi():\n    return 'hi'\n")
    n.start(timeout=20)
    n.wait_ready(timeout=20, boots=4)  # the first boot and two more in a row within 30 s; the 4th is safe
    with Shell(n.port) as s:
        assert "micrOS: safe mode: boot loop: 3 resets within 30 s of boot" in s.banner
        i = info(s)
        assert i["safemode"] is True and i["why"].startswith("safe mode: boot loop: 3 resets")
        assert s.cmd("probe hi") == "Error: unknown module probe (help lists them); safe mode: frozen modules only"
        assert s.cmd("system memfree").startswith("CPU[Hz]")  # the frozen ones answer
        s.cmd("conf")
        assert s.cmd("boothook n/a") == "Saved (takes effect after reboot)"
        s.cmd("noconf")
        time.sleep(1.5)
        assert n.boots == 4  # safe mode did not run the hook: no 5th boot
        while info(s)["uptime_s"] < 31:  # one clean uptime clears the count
            time.sleep(1)
        assert s.cmd("reboot") == "Reboot"
    n.wait_ready(timeout=20, boots=5)
    with Shell(n.port) as s:
        assert s.banner == ""
        assert s.cmd("probe hi") == "hi"
        i = info(s)
        assert i["safemode"] is False and "why" not in i
    assert n.log.read_text().count("micrOS: safe mode: boot loop") == 1


def test_a_taken_shell_port_falls_back_to_the_default_port(make_node):
    n = make_node(start=False)
    blocker = hold(n.port)
    probe = hold(DEFAULT_PORT)
    if probe is None:
        blocker.close()
        pytest.skip("port 9008 is used by another program on this machine")
    probe.close()
    try:
        n.start(timeout=20)  # its wait ends at once (the blocker answers); wait for 9008 below
        with shell_on(n, DEFAULT_PORT) as s:
            assert "micrOS: shell port %d in use: serving on 9008" % n.port in s.banner
            i = info(s)
            assert i["safemode"] is False and i["why"] == "shell port %d in use: serving on 9008" % n.port
    finally:
        blocker.close()


def test_both_ports_taken_means_safe_mode_retrying_never_an_exit(make_node):
    n = make_node(start=False)
    blocker = hold(n.port)
    other = hold(DEFAULT_PORT)
    if other is None:
        blocker.close()
        pytest.skip("port 9008 is used by another program on this machine")
    try:
        n.start(timeout=20)
        end = time.monotonic() + 10
        while "shell ports in use" not in n.log.read_text() and time.monotonic() < end:
            time.sleep(0.1)
        assert "micrOS: safe mode: shell ports in use, retrying" in n.log.read_text()
        time.sleep(2)
        assert n.proc.poll() is None and n.boots == 1  # still running: no exit, no reboot
        other.close()
        other = None
        with shell_on(n, DEFAULT_PORT, timeout=30) as s:  # a retry binds the freed default port
            i = info(s)
            assert i["safemode"] is True and i["why"] == "shell port %d in use: serving on 9008" % n.port
    finally:
        blocker.close()
        if other:
            other.close()


@pytest.mark.parametrize("key,value,error", [
    ("boothook", "nosuch thing", "Error: boothook: 'nosuch thing': unknown module nosuch (help lists them)"),
    ("boothook", "'gpio RGB(0,0,0);system nope'", "Error: boothook: 'system nope': system has no function nope"),
    ("boothook", "'system reboot(('", "Error: boothook: 'system reboot(('"),
    ("socport", "8266", "Error: socport 8266 is WebREPL's port; pick another"),
    ("socport", "0", "Error: socport must be 1..65535"),
    ("socport", "HELD", "Error: socport HELD is in use on the node"),
])
def test_settings_that_fail_only_after_a_reboot_are_refused_when_set(make_node, key, value, error):
    n = make_node()
    held = hold(free_port())
    try:
        value = value.replace("HELD", str(held.getsockname()[1]))
        error = error.replace("HELD", str(held.getsockname()[1]))
        with Shell(n.port) as s:
            s.cmd("conf")
            before = s.cmd(key)
            assert s.cmd("%s %s" % (key, value)).startswith(error)
            assert s.cmd(key) == before  # nothing was saved
            assert n.config()[key] == (int(before) if key == "socport" else before)
            # what is valid is still taken
            ok = "gpio RGB(0,0,0);system memfree" if key == "boothook" else str(free_port())
            assert s.cmd("%s '%s'" % (key, ok) if key == "boothook" else "%s %s" % (key, ok)) == \
                "Saved (takes effect after reboot)"
    finally:
        held.close()
