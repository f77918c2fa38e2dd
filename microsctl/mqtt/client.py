"""A host-side MQTT client over paho-mqtt: commands to nodes with correlation ids, and the
fleet's retained status/state messages."""
import itertools
import json
import ssl
import threading
import time

from microsctl import MicrosError
from microsctl.mqtt.broker import is_tls, parse_url


class Fleet:
    """Connected to one broker, subscribed to <prefix>/+/{status,state,reply}. mqtts:// URLs
    speak TLS, the broker's certificate checked against `ca` (a PEM file) or the system's CAs."""

    def __init__(self, url, prefix="micros", client_id=None, ca=None):
        import paho.mqtt.client as mqtt

        self.host, self.port, user, password = parse_url(url)
        self.prefix = prefix
        self.status = {}  # devfid -> "online"/"offline"
        self.state = {}  # devfid -> telemetry dict
        self.seen = time.monotonic()  # when the last message arrived
        self._waiting = {}  # correlation id -> [Event, reply]
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "")
        if user:
            self._c.username_pw_set(user, password)
        if is_tls(url):
            self._c.tls_set(ca_certs=ca)
        self._c.on_message = self._message
        self._c.on_connect = self._connected

    def connect(self, timeout=5):
        self._ready = threading.Event()
        try:
            self._c.connect(self.host, self.port, keepalive=30)
        except ssl.SSLError as err:
            raise MicrosError(f"TLS with the broker at {self.host}:{self.port} failed ({err.reason or err}); "
                              "check its certificate and the CA") from err
        except OSError as err:
            raise MicrosError(f"no MQTT broker at {self.host}:{self.port} ({err.strerror or err}); "
                              "check the address, or start one (apt-get install mosquitto)") from err
        self._c.loop_start()
        if not self._ready.wait(timeout):
            self.close()
            raise MicrosError(f"the broker at {self.host}:{self.port} did not accept the connection "
                              f"({self._refusal or 'no answer'}); check user and password")
        return self

    _refusal = None

    def _connected(self, client, userdata, flags, reason, props):
        if reason.is_failure:
            self._refusal = str(reason)
            return
        client.subscribe([(f"{self.prefix}/+/status", 1), (f"{self.prefix}/+/state", 0),
                          (f"{self.prefix}/+/reply", 1)])
        self._ready.set()

    def _message(self, client, userdata, msg):
        self.seen = time.monotonic()
        parts = msg.topic.split("/")
        if len(parts) != 3:
            return
        node, leaf = parts[1], parts[2]
        text = msg.payload.decode(errors="replace")
        if leaf == "status":
            self.status[node] = text
        elif leaf == "state":
            try:
                self.state[node] = json.loads(text)
            except ValueError:
                self.state[node] = {"error": text[:80]}
        elif leaf == "reply" and text.startswith("{"):
            try:
                rep = json.loads(text)
            except ValueError:
                return
            with self._lock:
                w = self._waiting.get(rep.get("id"))
            if w:
                w[1] = rep.get("reply")
                w[0].set()

    def send(self, node, line):
        """Publish one command; returns a waiter for wait()."""
        cid = f"h{next(self._ids)}"
        w = [threading.Event(), None, cid, time.perf_counter()]
        with self._lock:
            self._waiting[cid] = w
        self._c.publish(f"{self.prefix}/{node}/cmd", json.dumps({"id": cid, "cmd": line}), qos=1)
        return w

    def wait(self, w, timeout=10):
        """The reply text of a waiter (None on timeout) and the round trip in seconds."""
        ok = w[0].wait(timeout)
        with self._lock:
            self._waiting.pop(w[2], None)
        return (w[1] if ok else None), time.perf_counter() - w[3]

    def command(self, node, line, timeout=10):
        reply, _ = self.wait(self.send(node, line), timeout)
        if reply is None:
            raise MicrosError(f"node {node} did not answer {line!r} within {timeout} s over MQTT")
        return reply

    def settle(self, quiet=0.5, timeout=5):
        """Wait until the retained messages have come in (no message for `quiet` seconds)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and time.monotonic() - self.seen < quiet:
            time.sleep(0.05)

    def close(self):
        self._c.loop_stop()
        self._c.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def status_rows(url, prefix="micros"):
    """(devfid, status, uptime, memfree, rssi) of every node with retained messages under prefix."""
    f = Fleet(url, prefix).connect()
    try:
        f.settle()
    finally:
        f.close()
    rows = []
    for node in sorted(set(f.status) | set(f.state)):
        st = f.state.get(node, {})
        rows.append((node, f.status.get(node, "?"), st.get("uptime", "?"), st.get("memfree", "?"),
                     st.get("rssi") if st.get("rssi") is not None else "-"))
    return rows
