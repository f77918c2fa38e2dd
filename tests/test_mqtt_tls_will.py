"""The last will of a hung node (SIGSTOP: its TCP connection stays open and silent), as the broker
of record really publishes it.

MQTT 3.1.1 §3.1.2.10: the server disconnects a client it has heard nothing from for 1.5 x keepalive
and publishes its will. Mosquitto 2.0.11 (Debian's; the same code up to 2.0.20), src/keepalive.c:
keepalive__check() scans the clients only when `last_keepalive_check + 5 < db.now_s` (every 6 s,
whole seconds; src/loop.c calls it each pass, epoll_wait's timeout is 100 ms) and disconnects one
when `db.now_s - context->last_msg_in > keepalive*3/2` (whole seconds, integer 3/2). So the will
comes more than floor(1.5 x keepalive) s after the node's last packet and, with the up to 6 s
between scans and the two roundings, at most floor(1.5 x keepalive) + 8 s after it.
Measured (docs/mqtt.md): keepalive 2 s -> 4.0 to 8.9 s, 4 s -> 7.9 to 9.9 s, 6 s -> 9.9 to 15.0 s."""
import os
import signal

import pytest

from microsctl.mqtt import broker as mb
from tests.test_mqtt import Watch, mqtt_sets

pytestmark = pytest.mark.skipif(not mb.mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")

KA = 2
FLOOR = KA * 3 // 2  # Mosquitto's keepalive*3/2
SCAN = 6  # `last_keepalive_check + 5 < now`: a scan every 6 whole seconds


def test_hung_node_will_as_mosquitto_checks_keepalive(make_node):
    with mb.Mosquitto() as b:
        w = Watch(b.port, "micros/hung01/#")
        n = make_node("lamp", sets=mqtt_sets(b, devfid="hung01", mqttka=KA, mqttper=1), name="hung")
        assert w.wait(lambda m: m[0].endswith("/status") and m[1] == "online")
        for _ in range(2):
            assert w.wait(lambda m: m[0].endswith("/state"), after=len(w.msgs))  # telemetry flowing
            k = len(w.msgs)
            os.kill(n.proc.pid, signal.SIGSTOP)
            try:
                got = w.wait(lambda m: m[1] == "offline", after=k, timeout=FLOOR + SCAN + 8)
                assert got, "no last will for a hung node"
                # the last packet of the node the broker passed on: its telemetry, every second
                # (a PINGREQ goes only after mqttka/2 s without sending, so none in between)
                last = [m for m in w.msgs[:w.msgs.index(got)] if m[0].endswith("/state")][-1][3]
                waited = got[3] - last
                assert waited > FLOOR - 0.1, f"the will came {waited:.2f} s after the last packet: not the keepalive"
                assert waited <= FLOOR + 2 + SCAN + 1, f"the will came {waited:.2f} s after the last packet"
                assert got[0] == "micros/hung01/status" and not [m for m in w.msgs[k:] if m[1] == "online"]
            finally:
                os.kill(n.proc.pid, signal.SIGCONT)
            # back: it finds its connection dropped, reconnects with backoff and is online again
            assert w.wait(lambda m: m[0].endswith("/status") and m[1] == "online", after=w.msgs.index(got), timeout=20)
        w.close()
