"""A node finds its network again by itself (frozen/micros/netwatch.py), on the real MicroPython.

The virtual board's radio (ports/unix/network.py) models esp32/network_wlan.c: a connected
station whose network leaves reach loses its link and the driver keeps retrying
(the STA_DISCONNECTED handler calls esp_wifi_connect() again); `sim wifi` changes what is in
reach at runtime, MICROS_SIM_WIFI "ssid:key@ms" brings a router up ms after the node's radio."""
import json
import os
import subprocess
import time

import pytest

from microsctl.node.client import Shell
from microsctl.run import micropython
from microsctl import FROZEN


def info(s):
    return json.loads(s.cmd("system info >json"))


def wait_for(s, pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        i = info(s)
        if pred(i):
            return i
        time.sleep(0.5)
    raise AssertionError("timed out; last system info: %r" % i)


def test_router_late_at_boot_the_node_leaves_its_ap_for_it(make_node, monkeypatch):
    # the router comes up 20 s after the node: past the 15 s STA window at boot
    monkeypatch.setenv("MICROS_SIM_WIFI", "homenet:pa55word@20000")
    n = make_node(sets=["staessid=homenet", "stapwd=pa55word"], start=False)
    n.start(timeout=30)
    with Shell(n.port) as s:
        i = info(s)
        assert i["nwmd"] == "AP" and i["net"].startswith("AP, looking for homenet")
        i = wait_for(s, lambda i: i["net"].startswith("STA up"), 40)
        assert i["nwmd"] == "STA" and i["devip"] == "127.0.0.1"
        assert "1 reconnects" in i["net"] and "1 NTP resyncs" in i["net"]
        assert s.cmd("system wifirssi") == "RSSI[dBm]: -55"
    log = n.log.read_text()
    assert "net: no STA connection to homenet (no ap found), falling back to AP" in log
    assert "net: AP fallback, retrying homenet in the background" in log
    assert "net: homenet found, STA 127.0.0.1 (AP off)" in log
    assert n.config()["nwmd"] == "STA"


@pytest.mark.parametrize("board", ["sim", "esp8266"])
def test_link_lost_then_back_reconnects_and_resyncs_ntp(make_node, monkeypatch, board):
    monkeypatch.setenv("MICROS_SIM_WIFI", "homenet:pa55word")
    n = make_node(board=board, sets=["staessid=homenet", "stapwd=pa55word"])
    with Shell(n.port) as s:
        i = info(s)
        assert i["net"] == "STA up; 0 reconnects, 0 links lost, 0 NTP resyncs"
        s.cmd("sim step_clock -3600")  # the clock drifts while the link is down
        assert s.cmd("sim wifi ''") == ""  # the router goes away
        wait_for(s, lambda i: i["net"].startswith("STA link down, reconnecting to homenet"), 10)
        assert s.cmd("system wifirssi") == "no STA connection"
        s.cmd("sim wifi homenet:pa55word")  # and comes back
        i = wait_for(s, lambda i: i["net"].startswith("STA up"), 30)
        assert i["net"] == "STA up; 1 reconnects, 1 links lost, 1 NTP resyncs"
        assert abs(float(s.cmd("sim clock")) - time.time()) < 30  # NTP set it again
        assert i["nwmd"] == "STA" and i["uptime_s"] < 60  # no reboot
    log = n.log.read_text()
    assert "net: STA link to homenet lost, reconnecting" in log
    assert "net: STA link back, 127.0.0.1" in log


def test_ntp_resyncs_once_a_day(make_node, monkeypatch):
    monkeypatch.setenv("MICROS_SIM_WIFI", "homenet:pa55word")
    n = make_node(sets=["staessid=homenet", "stapwd=pa55word"])
    with Shell(n.port) as s:
        assert info(s)["net"].endswith("0 NTP resyncs")  # the boot's sync is not counted
        s.cmd("sim step_clock 3600")  # an hour on: no sync yet
        time.sleep(2.5)
        assert info(s)["net"].endswith("0 NTP resyncs")
        s.cmd("sim step_clock 86400")  # a day since the last sync
        i = wait_for(s, lambda i: i["net"].endswith("1 NTP resyncs"), 10)
        assert i["net"].startswith("STA up")
        assert abs(float(s.cmd("sim clock")) - time.time()) < 30


# The watch's tick on the real MicroPython, with a station that never changes state:
# it must allocate nothing (a tick runs every second for the node's whole life).
# time.time() is an int on the ESP ports (seconds from 2000); the unix port's float would
# allocate, so the script runs over a time module that answers ints as they do.
TIME = """
import sys
_p = sys.path
sys.path = []
import time as _t
sys.path = _p
ticks_ms = _t.ticks_ms
ticks_add = _t.ticks_add
ticks_diff = _t.ticks_diff
_AT = int(_t.time()) - 946684800 - _t.ticks_ms() // 1000
def time():
    return _AT + _t.ticks_ms() // 1000
"""
TICK = """
import sys, gc
sys.path[:] = ["", ".frozen", %(frozen)r]
import time
import micropython
class Conf:
    def get(self, k):
        return {"staessid": "homenet", "stapwd": "pw", "devip": "n/a"}[k]
import micros
micros.conf = Conf()
sys.modules["micros.conf"] = micros.conf
from micros import netwatch
class Sta:
    up = True
    def isconnected(self):
        return self.up
    def active(self, on=None):
        return True
    def connect(self, *a):
        pass
sta = Sta()
netwatch._s[3] = time.time()  # _NTP_AT: synced just now
for up, phase in ((True, 0), (False, 1)):
    sta.up = up
    netwatch._s[0] = phase  # _PHASE: _UP or _WAIT
    netwatch._s[1] = time.ticks_add(time.ticks_ms(), 3600000)  # _DUE: an hour away
    netwatch._tick(None, sta, time.ticks_ms())  # warm up
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(1000):
        netwatch._tick(None, sta, time.ticks_ms())
    print(gc.mem_alloc() - a)
    gc.enable()
"""


def test_a_watch_tick_allocates_nothing(tmp_path):
    (tmp_path / "time.py").write_text(TIME)
    out = subprocess.run([micropython(), "-c", TICK % {"frozen": str(FROZEN)}],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.split() == ["0", "0"]  # connected and up; down and waiting out the backoff
