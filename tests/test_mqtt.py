"""MQTT: real virtual nodes (MicroPython unix port, micros.mqtt) against a real Mosquitto on
loopback. The broker of record is Debian's mosquitto; .ci/run installs it."""
import json
import os
import signal
import socket
import threading
import time

import pytest

from microsctl import ROOT, MicrosError
from microsctl.flashing import schema
from microsctl.mqtt import broker as mb
from microsctl.mqtt.client import Fleet, status_rows
from microsctl.node.client import Shell
from tests import hass

pytestmark = pytest.mark.skipif(not mb.mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")


@pytest.fixture(scope="module")
def broker():
    with mb.Mosquitto() as b:
        yield b


class Watch:
    """A subscriber that keeps every message: (topic, payload, retain, time)."""

    def __init__(self, port, topic="#"):
        import paho.mqtt.client as mqtt

        self.msgs = []
        self.cond = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.c.on_message = self._on
        self.c.on_connect = lambda c, *a: c.subscribe(topic, 1)
        subscribed = threading.Event()
        self.c.on_subscribe = lambda *a: subscribed.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        # ready once the broker acknowledged the subscription: a reply published before that
        # (not retained) would never reach this watcher
        assert subscribed.wait(10), f"no SUBACK for {topic} from the broker"

    def _on(self, c, u, m):
        with self.cond:
            self.msgs.append((m.topic, m.payload.decode(), m.retain, time.monotonic()))
            self.cond.notify_all()

    def wait(self, pred, timeout=10, after=0):
        """The first message at index >= after that matches pred."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.msgs[after:]:
                    if pred(m):
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def mqtt_sets(b, **extra):
    sets = {"mqtt": True, "mqtthost": "127.0.0.1", "mqttport": b.port, "mqttka": 4, "mqttper": 1}
    sets.update(extra)
    return [f"{k}={v}" for k, v in sets.items()]


@pytest.fixture
def lamp(make_node, broker):
    w = Watch(broker.port, "micros/lamp01/#")
    n = make_node("lamp", sets=mqtt_sets(broker))
    assert w.wait(lambda m: m[0] == "micros/lamp01/status" and m[1] == "online"), "node never came online"
    yield n
    w.close()


def test_command_answered_over_mqtt_through_the_shell_path(lamp, broker):
    f = Fleet(broker.url).connect()
    try:
        assert f.command("lamp01", "gpio RGB 100 200 300") == "SET RGB"
        assert f.command("lamp01", "hello").startswith("hello:lamp01:")  # a shell built-in
        assert f.command("lamp01", "system nosuch").startswith("Error: system has no function nosuch")
        assert f.command("lamp01", "conf\ndevfid\nnoconf") == "\nlamp01\n"  # conf mode, as a client's
        assert f.command("lamp01", "conf\ndump mqttpwd") == "\nmqttpwd: *****"  # the secret stays masked
    finally:
        f.close()
    w = Watch(broker.port, "micros/lamp01/reply")
    try:
        # a bare line: the reply is the bare text
        Fleet(broker.url).connect()._c.publish("micros/lamp01/cmd", "version", qos=1)
        assert w.wait(lambda m: m[1] == "0.1.0")
        # a bad request gets an error with its id
        w2 = Fleet(broker.url).connect()
        w2._c.publish("micros/lamp01/cmd", '{"id": 5, "nocmd": 1}', qos=1)
        got = w.wait(lambda m: m[1].startswith("{") and json.loads(m[1])["id"] == 5)
        assert got and json.loads(got[1])["reply"].startswith("Error:")
    finally:
        w.close()
    # the same node still serves its socket shell
    with Shell(lamp.port) as s:
        assert s.cmd("hello").startswith("hello:lamp01:")


def test_conf_dump_masks_the_mqtt_password(make_node, broker):
    n = make_node("lamp", sets=mqtt_sets(broker, mqttpwd="s3cret-pw"), name="masked")
    with Shell(n.port) as s:
        s.cmd("conf")
        assert s.cmd("mqttpwd") == "*****"
        assert "s3cret-pw" not in s.cmd("dump mqtt")


def test_telemetry_arrives_with_lm_state(lamp, broker):
    w = Watch(broker.port, "micros/lamp01/state")
    f = Fleet(broker.url).connect()
    try:
        f.command("lamp01", "gpio RGB 0 500 1000")
        got = w.wait(lambda m: json.loads(m[1]).get("gpio", {}).get("rgb") == [0, 500, 1000], timeout=5)
        assert got, w.msgs
        st = json.loads(got[1])
        assert st["memfree"] > 0 and st["uptime"] >= 0 and "rssi" in st
        # every period: two more within a few periods (mqttper=1)
        n0 = len(w.msgs)
        assert w.wait(lambda m: True, after=n0 + 1, timeout=5)
    finally:
        f.close()
        w.close()


def test_status_is_retained_and_listed_by_mqtt_status(lamp, broker):
    rows = status_rows(broker.url)
    row = [r for r in rows if r[0] == "lamp01"]
    assert row and row[0][1] == "online" and isinstance(row[0][3], int)
    import subprocess
    import sys

    for task in ("mqtt-status", "status"):
        out = subprocess.run([sys.executable, "-m", "invoke", task, "--mqtt", broker.url],
                             capture_output=True, text=True, cwd=str(ROOT), timeout=60)
        assert out.returncode == 0, out.stderr
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("lamp01")]
        assert line and line[0].split()[1] == "online"


def test_killed_node_leaves_its_last_will_within_one_and_a_half_keepalives(make_node, broker):
    """SIGKILL: the will within 1.5 x keepalive (the connection drops without DISCONNECT).
    SIGSTOP: the TCP connection stays open and silent, so only the broker's keepalive check can
    publish the will; MQTT 3.1.1 §3.1.2.10 says 1.5 x keepalive, Mosquitto 2.0.11 measured
    about 2 x (3.9 s, 8.1 s, 12.6 s at keepalive 2, 4, 6 s on an idle machine) and more under
    load (over 8 s at keepalive 2 during the full suite), so there the test asks for the will
    itself, within 15 s."""
    w = Watch(broker.port, "micros/frozen01/status")
    n = make_node("lamp", sets=mqtt_sets(broker, devfid="frozen01", mqttka=2), name="frozen")
    assert w.wait(lambda m: m[1] == "online")
    os.kill(n.proc.pid, signal.SIGSTOP)
    try:
        got = w.wait(lambda m: m[1] == "offline", timeout=15)
        assert got, "no last will for a hung node"
    finally:
        os.kill(n.proc.pid, signal.SIGCONT)
    # and a node that dies outright: the will at once
    assert w.wait(lambda m: m[1] == "online", after=len(w.msgs))  # it reconnects after SIGCONT
    k = len(w.msgs)
    n.proc.kill()
    n.stop()
    got = w.wait(lambda m: m[1] == "offline", after=k, timeout=1.5 * 2)
    assert got and got[2] is False  # live delivery; a later subscriber gets it retained:
    w.close()
    w2 = Watch(broker.port, "micros/frozen01/status")
    assert w2.wait(lambda m: m[1] == "offline" and m[2], timeout=3)
    w2.close()


def test_broker_restart_node_back_within_its_backoff(make_node):
    with mb.Mosquitto() as b:
        n = make_node("lamp", sets=mqtt_sets(b, devfid="rb01"), name="rb")
        w = Watch(b.port, "micros/rb01/status")
        assert w.wait(lambda m: m[1] == "online")
        w.close()
        t0 = time.monotonic()
        b.restart(down=0.5)
        w = Watch(b.port, "micros/rb01/status")
        # persistence is off: the retained "online" is gone, so this is the node coming back
        got = w.wait(lambda m: m[1] == "online", timeout=12)
        assert got, open(n.log).read()[-800:]
        # backoff 1 s, 2 s, 4 s (+ at most 1/4 jitter) after the first failure
        assert got[3] - t0 < 0.5 + 1.25 + 2.5 + 5 + 2
        with Fleet(b.url).connect() as f:
            assert f.command("rb01", "hello").startswith("hello:rb01:")
        w.close()


def test_user_and_password_are_the_gate(make_node):
    with mb.Mosquitto(users={"node": "right-pw"}) as b:
        bad = make_node("lamp", sets=mqtt_sets(b, devfid="bad01", mqttuser="node", mqttpwd="wrong-pw"), name="bad")
        good = make_node("lamp", sets=mqtt_sets(b, devfid="good01", mqttuser="node", mqttpwd="right-pw"), name="good")
        with Fleet(f"mqtt://node:right-pw@127.0.0.1:{b.port}").connect() as f:
            assert f.command("good01", "hello").startswith("hello:good01:")
            f.settle()
            assert "bad01" not in f.status
        time.sleep(1)
        assert "bad user or password" in open(bad.log).read()
        with pytest.raises(MicrosError, match="check user and password"):
            Fleet(b.url).connect()
        del good


def test_discovery_payloads_are_valid_home_assistant_config(lamp, broker):
    w = Watch(broker.port, "homeassistant/#")
    st = Watch(broker.port, "micros/lamp01/state")
    f = Fleet(broker.url).connect()
    try:
        f.command("lamp01", "gpio RGB 1000 0 500")
        state = st.wait(lambda m: '"rgb": [1000, 0, 500]' in m[1])
        assert state
        value_json = json.loads(state[1])
        time.sleep(0.5)
        cfgs = {m[0]: m for m in w.msgs if m[0].split("/")[2] == "lamp01"}
        assert all(m[2] for m in cfgs.values()), "discovery configs are retained"
        seen = {}
        for topic, m in cfgs.items():
            comp, cfg = hass.validate(topic, m[1])
            seen[(comp, topic.split("/")[3])] = cfg
            assert cfg["availability_topic"] == "micros/lamp01/status"
            assert cfg["device"]["sw_version"] == "0.1.0" and cfg["device"]["model"]
        assert {("sensor", "memfree"), ("sensor", "rssi"), ("sensor", "uptime"), ("button", "reboot"),
                ("light", "rgb")} <= set(seen)
        # the templates, rendered as HA renders them, read the node's real state
        mem = seen[("sensor", "memfree")]
        assert hass.render(mem["value_template"], value_json=value_json) == str(value_json["memfree"])
        light = seen[("light", "rgb")]
        assert hass.render(light["state_template"], value_json=value_json) == "on"
        assert [hass.render(light[f"{c}_template"], value_json=value_json) for c in ("red", "green", "blue")] == \
            ["255", "0", "128"]
        # HA's command for "red, full brightness" runs on the node
        line = hass.render(light["command_on_template"], red=255, green=0, blue=0, brightness=255)
        assert f.command("lamp01", line) == "SET RGB"
        assert f.command("lamp01", light["command_off_template"]) == "RGB OFF"
        assert f.command("lamp01", "gpio state >json") == '{"rgb": [0, 0, 0]}'
        btn = seen[("button", "reboot")]
        assert btn["command_topic"] == "micros/lamp01/cmd" and btn["payload_press"] == "reboot"
    finally:
        f.close()
        w.close()
        st.close()


def test_validator_refuses_what_home_assistant_refuses():
    ok = {"stat_t": "a/b/state", "uniq_id": "x_1", "dev": {"ids": ["x"]}, "unit_of_meas": "B", "dev_cla": "data_size"}
    hass.validate("homeassistant/sensor/n1/mem/config", json.dumps(ok))
    cases = [
        ("homeassistant/sensor/n.1/mem/config", ok),  # node_id charset
        ("homeassistant/sensor/n1/mem/config", {k: v for k, v in ok.items() if k != "stat_t"}),
        ("homeassistant/sensor/n1/mem/config", dict(ok, dev={"name": "x"})),  # no identifiers
        ("homeassistant/sensor/n1/mem/config", dict(ok, bogus=1)),
        ("homeassistant/sensor/n1/mem/config", dict(ok, unit_of_meas="dBm")),
        ("homeassistant/button/n1/b/config", {"uniq_id": "u"}),
        ("homeassistant/light/n1/l/config", {"schema": "template", "cmd_t": "a/cmd", "cmd_on_tpl": "x"}),
        ("homeassistant/button/n1/b/config", {"cmd_t": "a/#"}),
        ("homeassistant/sensor/n1/mem/config", dict(ok, val_tpl="{{ value_json.x ")),
    ]
    for topic, payload in cases:
        with pytest.raises(hass.Invalid):
            hass.validate(topic, json.dumps(payload))


def test_mqtt_off_imports_nothing(make_node):
    n = make_node("lamp", sets=["mqtthost=127.0.0.1"], name="off")
    with Shell(n.port) as s:
        mods = json.loads(s.cmd("sim modules >json"))
    assert "micros.shell" in mods and "micros.mqtt" not in mods and "micros.mqttha" not in mods


def test_mqtt_on_loads_client_and_drops_discovery(lamp, broker):
    with Fleet(broker.url).connect() as f:
        assert f.command("lamp01", "system memfree").startswith("CPU")  # micros.mqttcmd ran it
    with Shell(lamp.port) as s:
        mods = json.loads(s.cmd("sim modules >json"))
    # discovery, the command's code and the connection's are dropped after use
    assert "micros.mqtt" in mods and not {"micros.mqttha", "micros.mqttcmd", "micros.mqttnet"} & set(mods)


def test_settings_validated_like_the_others():
    assert schema.params()["mqtt"].default is False
    assert schema.params()["mqttpwd"].secret
    for key, bad in (("mqttpfx", "a/#"), ("mqttpfx", "/micros"), ("mqttport", "0"), ("mqttka", "1"),
                     ("mqttdisc", "home/+"), ("mqtt", "maybe")):
        with pytest.raises(MicrosError):
            schema.validate(key, bad)
    assert schema.validate("mqttpfx", "home/nodes") == "home/nodes"


def test_broker_urls():
    assert mb.parse_url("mqtt://u:p@10.0.0.2:1884") == ("10.0.0.2", 1884, "u", "p")
    assert mb.parse_url("broker.lan") == ("broker.lan", 1883, None, None)
    for bad in ("http://x", "mqtt://", "mqtt://h:99999"):
        with pytest.raises(MicrosError):
            mb.parse_url(bad)


class FakeBroker:
    """A scripted broker on a raw socket: the test sees every byte the node sends and decides
    what is acknowledged (MQTT 3.1.1 packet formats, §2-3)."""

    def __init__(self):
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(15)
        self.port = self.srv.getsockname()[1]

    def accept(self):
        c, _ = self.srv.accept()
        c.settimeout(10)
        return c

    @staticmethod
    def _exact(c, n):
        buf = b""
        while len(buf) < n:
            got = c.recv(n - len(buf))
            if not got:
                raise EOFError
            buf += got
        return buf

    def packet(self, c):
        kind = self._exact(c, 1)[0]
        n, shift = 0, 0
        while True:
            b = self._exact(c, 1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return kind, self._exact(c, n)

    def session(self, c):
        """CONNECT -> CONNACK, SUBSCRIBE -> SUBACK; returns the CONNECT body."""
        kind, body = self.packet(c)
        assert kind == 0x10
        c.sendall(b"\x20\x02\x00\x00")
        kind, sub = self.packet(c)
        assert kind == 0x82
        c.sendall(b"\x90\x03" + sub[:2] + b"\x01")
        return body

    def publishes(self, c, until, ack=False):
        """PUBLISH packets as (flags, topic, pid, payload) until `until` matches one."""
        out = []
        while True:
            kind, body = self.packet(c)
            if kind & 0xF0 != 0x30:
                continue
            tl = int.from_bytes(body[:2], "big")
            topic, at, pid = body[2:2 + tl].decode(), 2 + tl, None
            if kind & 0x06:
                pid, at = int.from_bytes(body[at:at + 2], "big"), at + 2
                if ack:
                    c.sendall(b"\x40\x02" + pid.to_bytes(2, "big"))
            out.append((kind & 0x0F, topic, pid, body[at:]))
            if until(out[-1]):
                return out


def test_unacknowledged_qos1_is_resent_with_dup_after_reconnect(make_node):
    fb = FakeBroker()
    n = make_node("lamp", sets=[f"mqtt=True", "mqtthost=127.0.0.1", f"mqttport={fb.port}", "mqttka=30",
                                "mqttuser=node", "devfid=dup01"], name="dup", start=False)
    n.start()
    c1 = fb.accept()
    connect = fb.session(c1)
    # CONNECT: protocol MQTT level 4; flags user, will retained QoS 1, clean session; the will
    assert connect[:7] == b"\x00\x04MQTT\x04" and connect[7] == 0x80 | 0x20 | 0x08 | 0x04 | 0x02
    assert b"micros/dup01/status" in connect and b"offline" in connect and connect.endswith(b"node")
    first = fb.publishes(c1, lambda p: p[1] == "micros/dup01/status")[-1]
    flags, _, pid, payload = first
    assert payload == b"online" and flags == 0x03 and pid  # QoS 1, retained, not DUP
    c1.close()  # never acknowledged
    c2 = fb.accept()
    fb.session(c2)
    again = fb.publishes(c2, lambda p: p[1] == "micros/dup01/status", ack=True)[0]
    assert again == (0x08 | 0x03, "micros/dup01/status", pid, b"online")  # the same packet, DUP set
    fresh = fb.publishes(c2, lambda p: p[1] == "micros/dup01/status", ack=True)[-1]
    assert fresh[0] == 0x03 and fresh[3] == b"online"
    # a command after the PUBACKs: its reply proves the node has read them (one stream, in order)
    t = b"micros/dup01/cmd"
    c2.sendall(bytes([0x30, 2 + len(t) + 5, 0, len(t)]) + t + b"hello")
    reply = fb.publishes(c2, lambda p: p[1] == "micros/dup01/reply", ack=True)[-1]
    assert reply[3].startswith(b"hello:dup01:")
    # telemetry follows a command: read it, so that closing leaves nothing unread (an unread
    # byte makes close() send a RST, and the RST can discard the PUBACK still on its way)
    fb.publishes(c2, lambda p: p[1] == "micros/dup01/state")
    c2.close()
    c3 = fb.accept()  # all acknowledged now: nothing is resent
    fb.session(c3)
    third = fb.publishes(c3, lambda p: p[1] == "micros/dup01/status", ack=True)
    assert third[0][0] & 0x08 == 0 and all(not p[0] & 0x08 for p in third)
    c3.close()
    fb.srv.close()


def _n_qstr(node, sh):
    sh.cmd("sim qstrs")
    lines = [ln for ln in open(node.log).read().splitlines() if ln.startswith("qstr pool:")]
    return int(lines[-1].split("n_qstr=")[1].split(",")[0])


def test_nothing_from_the_network_is_interned(lamp, broker):
    """Unknown module and function names, JSON keys and argument words arrive over MQTT; the
    node's qstr pool (micropython.qstr_info, py/qstr.c) must not grow: qstrs are never freed."""
    def burst(f, tag):
        for i in range(20):
            u = f"{tag}{i}zz"
            assert "unknown module" in f.command("lamp01", f"nomod{u} go")
            assert "has no function" in f.command("lamp01", f"system nofunc{u}")
            assert f.command("lamp01", f"gpio RGB word{u}").startswith("Error")
            rep = f.wait(f.send("lamp01", "hello"), 10)[0]
            assert rep.startswith("hello:")
            f._c.publish("micros/lamp01/cmd", json.dumps({"id": u, "cmd": "hello", f"key{u}": u}), qos=1)

    with Fleet(broker.url).connect() as f, Shell(lamp.port) as sh:
        burst(f, "warm")  # the code paths' own names are interned on first use
        f.command("lamp01", "hello")
        before = _n_qstr(lamp, sh)
        burst(f, "new")
        f.command("lamp01", "hello")
        assert _n_qstr(lamp, sh) == before


def test_sim_mqtt_settings():
    from microsctl.mqtt import sim as mqttsim

    broker, sets = mqttsim.settings("mqtt://node:pw@10.1.2.3:1884")
    assert broker is None
    assert sets == ["mqtt=True", "mqtthost=10.1.2.3", "mqttport=1884", "mqttuser=node", "mqttpwd=pw"]
    broker, sets = mqttsim.settings(True)  # --mqtt alone: a Mosquitto on a free loopback port
    assert broker.proc is None and f"mqttport={broker.port}" in sets and "mqtthost=127.0.0.1" in sets
    broker.__exit__(None, None, None)
