"""The broker's name is resolved without blocking the node (frozen/micros/mqttnet.py).

On every port of MicroPython v1.28.0 socket.getaddrinfo blocks the caller: extmod/modlwip.c
(ESP8266) spins in poll_sockets() until lwIP's DNS callback fires, ports/esp32/modsocket.c waits
in lwip_getaddrinfo(), the unix port in libc; extmod/asyncio/stream.py's open_connection calls it
("# TODO this is blocking!"). The virtual node here runs in its own mount namespace whose
/etc/resolv.conf names a DNS server this test runs (127.0.0.77:53, so the test needs root and
unshare): both libc's resolver (the old code) and the node's own DNS client (the station's DNS
server is ifconfig()[3]: MICROS_SIM_DNS in ports/unix/network.py, the host's nameserver as
microsctl/node/sim.py passes it, as DHCP gives a board its LAN's) ask it. The server holds its answer while the test talks to the shell."""
import os
import shutil
import socket
import struct
import threading
import time

import pytest

from microsctl.mqtt import broker as mb
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port
from tests.test_mqtt import Watch, mqtt_sets

DNS_IP = "127.0.0.77"


def _can_run():
    if not mb.mosquitto():
        return "mosquitto is not installed (apt-get install mosquitto)"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare (util-linux): a DNS server on port 53 and a node with its own resolv.conf"
    return None


pytestmark = pytest.mark.skipif(_can_run() is not None, reason=str(_can_run()))


class FakeDNS:
    """A DNS server on DNS_IP:53 (RFC 1035 §4): A queries for `name` get `addr` (others an empty
    answer, unknown names NXDOMAIN), once `release` is set; `mute` drops every query."""

    def __init__(self, name, addr="127.0.0.1", alias=None):
        self.name, self.addr, self.alias = name, addr, alias  # alias: a CNAME for name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((DNS_IP, 53))
        self.sock.settimeout(0.2)
        self.release = threading.Event()
        self.asked = threading.Event()
        self.mute = False
        self.malformed = False  # replies that say 65535 questions and hold one
        self.queries = 0
        self.held = []
        self.done = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _reply(self, q):
        at, labels = 12, []
        while q[at]:
            labels.append(q[at + 1:at + 1 + q[at]].decode())
            at += 1 + q[at]
        qtype = struct.unpack(">H", q[at + 1:at + 3])[0]
        question = q[12:at + 5]
        name = ".".join(labels)
        if self.malformed:
            return q[:2] + b"\x81\x80" + b"\xff\xff\x00\x01\x00\x00\x00\x00" + question
        if self.alias and name == self.alias and qtype == 1:  # CNAME alias -> name, then name's A
            target = b"".join(bytes([len(p)]) + p.encode() for p in self.name.split(".")) + b"\x00"
            cname = b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c" + struct.pack(">H", len(target)) + target
            a = b"\xc0" + bytes([12 + len(question) + 12]) + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + \
                socket.inet_aton(self.addr)
            return q[:2] + b"\x81\x80" + b"\x00\x01\x00\x02\x00\x00\x00\x00" + question + cname + a
        if name != self.name:
            return q[:2] + b"\x81\x83" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question  # NXDOMAIN
        if qtype != 1:
            return q[:2] + b"\x81\x80" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question
        rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(self.addr)
        return q[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + question + rr

    def _serve(self):
        while not self.done:
            if self.release.is_set():
                for q, peer in self.held:
                    self.sock.sendto(self._reply(q), peer)
                self.held = []
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            self.queries += 1
            self.asked.set()
            if not self.mute:
                self.held.append((q, peer))

    def close(self):
        self.done = True
        self.t.join(2)
        self.sock.close()


class NamespacedNode(SimNode):
    """A virtual node whose /etc/resolv.conf names DNS_IP (a private mount namespace)."""

    def env(self):
        env = super().env()
        env["MICROS_SIM_DNS"] = DNS_IP  # as the host side reads it from this resolv.conf
        return env

    def argv(self):
        rc = self.dir / "resolv.conf"
        rc.write_text(f"nameserver {DNS_IP}\n")
        return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(rc),
                *super().argv()]


@pytest.fixture
def dns_node(tmp_path):
    made = []

    def make(sets, name):
        n = NamespacedNode(name, root=tmp_path, heap="128k", drive=True)
        n.prepare("lamp", sets, port=free_port())
        made.append(n)
        return n.start()

    yield make
    for n in made:
        n.stop()


def test_shell_answers_while_the_broker_name_is_resolved_and_the_address_is_kept(dns_node):
    dns = FakeDNS("broker.micros.test")
    try:
        with mb.Mosquitto() as b:
            w = Watch(b.port, "micros/dns01/status")
            n = dns_node(mqtt_sets(b, mqtthost="broker.micros.test", devfid="dns01"), "dns01")
            assert dns.asked.wait(10), "the node never asked the DNS server for the broker's name"
            # the answer is held: the node is resolving, and its shell must still serve
            with Shell(n.port, timeout=8) as s:
                assert s.cmd("hello").startswith("hello:dns01:")
            assert not w.wait(lambda m: m[1] == "online", timeout=0.2)  # not yet resolved
            dns.release.set()
            assert w.wait(lambda m: m[1] == "online", timeout=10), open(n.log).read()[-600:]
            # DNS goes silent: after a broker restart the node comes back on the address it kept
            dns.mute = True
            _back_on_kept_address(b, n, dns, "dns01", "DNS server 127.0.0.77 did not answer")
            w.close()
    finally:
        dns.close()


def _back_on_kept_address(b, n, dns, devfid, why):
    """Restart the broker while DNS fails (`why`, as the node logs it): the node asks again (once
    per connection attempt), gets nothing usable and comes back on the address it kept."""
    asked = dns.queries
    b.restart(down=0.5)
    w = Watch(b.port, f"micros/{devfid}/status")
    try:
        assert w.wait(lambda m: m[1] == "online", timeout=25), open(n.log).read()[-600:]
        assert dns.queries > asked
        assert f"broker.micros.test: {why}; using 127.0.0.1" in open(n.log).read()
    finally:
        w.close()


def test_an_unknown_broker_name_is_reported_and_the_shell_serves(dns_node):
    dns = FakeDNS("broker.micros.test")
    dns.release.set()
    try:
        n = dns_node(["mqtt=True", "mqtthost=nosuch.micros.test", "devfid=dns02"], "dns02")
        assert dns.asked.wait(10)
        with Shell(n.port, timeout=8) as s:
            assert s.cmd("hello").startswith("hello:dns02:")
        end = time.monotonic() + 5
        while "nosuch.micros.test: name not found" not in open(n.log).read():
            assert time.monotonic() < end, open(n.log).read()[-600:]
            time.sleep(0.1)
    finally:
        dns.close()


def test_an_alias_is_followed_and_a_literal_address_asks_no_dns(dns_node):
    dns = FakeDNS("broker.micros.test", alias="mqtt.micros.test")
    dns.release.set()
    try:
        with mb.Mosquitto() as b:
            w = Watch(b.port, "micros/+/status")
            dns_node(mqtt_sets(b, mqtthost="mqtt.micros.test", devfid="dns03"), "dns03")
            assert w.wait(lambda m: m[0] == "micros/dns03/status" and m[1] == "online", timeout=10)
            asked = dns.queries
            assert asked >= 1
            dns_node(mqtt_sets(b, devfid="dns04"), "dns04")  # mqtthost 127.0.0.1
            assert w.wait(lambda m: m[0] == "micros/dns04/status" and m[1] == "online", timeout=10)
            assert dns.queries == asked
            w.close()
    finally:
        dns.close()


def test_a_malformed_dns_reply_is_a_dns_failure_and_the_kept_address_is_used(dns_node):
    """A reply whose counts run past its end (65535 questions, one there) is a failed lookup:
    the node reconnects to the address it kept. mqttnet._skip read past the reply and raised
    IndexError, which the address lookup did not take for a DNS failure: the node never came back."""
    dns = FakeDNS("broker.micros.test")
    dns.release.set()
    try:
        with mb.Mosquitto() as b:
            w = Watch(b.port, "micros/dns05/status")
            n = dns_node(mqtt_sets(b, mqtthost="broker.micros.test", devfid="dns05"), "dns05")
            assert w.wait(lambda m: m[1] == "online", timeout=10), open(n.log).read()[-600:]
            dns.malformed = True
            _back_on_kept_address(b, n, dns, "dns05", "bad DNS reply")
            with Shell(n.port, timeout=8) as s:
                assert s.cmd("hello").startswith("hello:dns05:")
            w.close()
    finally:
        dns.close()
