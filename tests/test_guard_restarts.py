"""The boot-loop guard (frozen/micros/core.py, micros.guard) counts the resets micrOS did not ask
for, not the ones it did: a file OTA commit, a firmware OTA switch, a client's `reboot` or
`system reboot`. On the real MicroPython unix port.

The count lives in the RTC user memory, b"mG" + count. MicroPython v1.28.0 writes it at once
(ports/esp8266/machine_rtc.c: system_rtc_mem_write into the RTC's RAM; ports/esp32/machine_rtc.c:
a memcpy into RTC_NOINIT memory) and keeps it across machine.reset() (esp8266 system_restart,
esp32 esp_restart), a panic and the watchdog; blank after a power cut. The virtual board models
that memory as the file MICROS_SIM_RTCMEM (ports/unix/machine.py RTC.memory), kept across the
sim's resets and removed at power-on (microsctl/node/sim.py); the chip's own RTC clock is
ports/unix/chiprtc.py, not used here. A crash or the watchdog resets the chip without running any
micrOS code: the stand-in here is a Load Module calling machine.reset() itself, so nothing of
micrOS runs before the reset either."""
import json

import pytest

from microsctl.node import ota
from microsctl.node.client import Shell

KEY = "guard-shell-key-7"


def info(s):
    return json.loads(s.cmd("system info >json"))


@pytest.fixture
def mk(keyed):
    """Virtual nodes with a shell key (ota needs an authenticated shell)."""
    return keyed(KEY)


def test_three_file_updates_in_a_row_leave_the_node_in_normal_mode(mk, tmp_path):
    """Each commit restarts the node within seconds of its boot (well under the guard's 30 s):
    before, the 4th boot was safe mode and the updated LM was refused."""
    n = mk()
    src = tmp_path / "LM_mine.py"
    for i in range(3):
        src.write_text(f"def hello():\n    return 'v{i}'\n")
        boots = n.boots
        ota.push(ota.collect([src]), n.port)
        assert n.boots == boots + 1  # the commit restarted the node
    assert n.boots == 4
    with Shell(n.port) as s:
        i = info(s)
        assert i["safemode"] is False and "why" not in i
        assert s.cmd("mine hello") == "v2"
    assert "safe mode" not in n.log.read_text()


def test_client_reboots_in_a_row_do_not_count(mk):
    """`reboot` (the shell's) and `system reboot` (the Load Module's), each soon after boot."""
    n = mk()
    for i, line in enumerate(["reboot", "system reboot", "reboot", "system reboot"]):
        with Shell(n.port) as s:
            if line == "reboot":
                assert s.cmd(line) == "Reboot"
            else:  # the Load Module resets at once: no reply
                s.sock.sendall(b"system reboot\n")
        n.wait_ready(timeout=20, boots=i + 2)
    with Shell(n.port) as s:
        assert info(s)["safemode"] is False
    assert "safe mode" not in n.log.read_text()


def _crasher(n):
    # a reset micrOS did not ask for, soon after every boot (a scheduled job "crashes")
    n.fs.joinpath("LM_crash.py").write_text("def now():\n    import machine\n    machine.reset()\n")


def test_a_crash_loop_after_the_boot_still_ends_in_safe_mode(mk):
    n = mk(sets=["timirq=True", "timirqcbf=crash now", "timirqseq=1500"], start=False)
    _crasher(n)
    n.start(timeout=20)
    n.wait_ready(timeout=30, boots=4)  # three resets within 30 s of boot: the 4th boot is safe mode
    with Shell(n.port) as s:
        i = info(s)
        assert i["safemode"] is True and i["why"].startswith("safe mode: boot loop: 3 resets")
    assert n.log.read_text().count("micrOS: safe mode: boot loop") == 1


def test_deliberate_restarts_do_not_hide_the_crashes_after_them(mk, tmp_path):
    """An update whose code crashes the node: the commit's restart counts from 0, the crashes
    after it count up to safe mode; in safe mode a client's reboot (the fix is in) gives the
    node its normal boot back at once, without waiting out the 30 s."""
    n = mk(sets=["timirq=True", "timirqcbf=crash now", "timirqseq=1500"])
    src = tmp_path / "LM_crash.py"
    src.write_text("def now():\n    import machine\n    machine.reset()\n")
    ota.push(ota.collect([src]), n.port)  # boot 2: the crashing code runs from here
    n.wait_ready(timeout=30, boots=5)  # boots 2, 3, 4 crash: boot 5 is safe mode
    with Shell(n.port) as s:
        assert info(s)["safemode"] is True
        s.cmd("conf")
        assert s.cmd("timirq False") == "Saved (takes effect after reboot)"
        s.cmd("noconf")
        assert info(s)["uptime_s"] < 30
        assert s.cmd("reboot") == "Reboot"
    n.wait_ready(timeout=20, boots=6)
    with Shell(n.port) as s:
        i = info(s)
        assert i["safemode"] is False and "why" not in i


@pytest.fixture(scope="module")
def firmwares(tmp_path_factory):
    """The core as `invoke build --board sim` builds it, as versions 0.1.0 .. 0.4.0 (ROMFS images)."""
    from tests.test_fwota import _romfs

    out = tmp_path_factory.mktemp("fw")
    return [_romfs(out, f"0.{i}.0") for i in range(1, 5)]


def test_three_firmware_switches_in_a_row_leave_the_node_in_normal_mode(mk, tmp_path, firmwares):
    """Firmware OTA on the sim's ESP32 OTA layout (tests/test_fwota.py, microsctl/node/simota.py):
    each `ota fw end` switches the slot and the node restarts into it within seconds. Before,
    the 4th boot was safe mode (and the health check of its trial boot let it pass)."""
    from microsctl.node import fwota, simota

    img = tmp_path / "flash.img"
    simota.write_image(img, firmwares[0])
    n = mk(flash=img)
    for i in (1, 2, 3):
        res = fwota.push(firmwares[i].read_bytes(), n.port)
        assert res["result"] == "updated" and res["after"]["version"] == f"0.{i + 1}.0"
    assert n.boots == 4
    with Shell(n.port) as s:
        i = info(s)
        assert i["safemode"] is False and "why" not in i
    assert "safe mode" not in n.log.read_text()
