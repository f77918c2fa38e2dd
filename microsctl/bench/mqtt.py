"""Benchmark section `mqtt`: a fleet of virtual nodes (real MicroPython, micros.mqtt) on one
Mosquitto on loopback: command round trip through the broker, commands per second across the
fleet, commands lost, broker restart recovery; and the client's heap cost on the unix port.

Given a binary with micrOS frozen in (`invoke bench --only mqtt --micropython PATH`, built
with shared/tools/unix-frozen.sh, 32-bit for issue 15's measure), the section measures that
binary instead (frozen_heap below): the client's heap connected and idle, the peak of a
discovery announcement, and issue 15's verdict from them; recorded as `mqtt-frozen-32`
(or -64), so the fleet's block stays as it was. Without one it measures the fleet and says
why the frozen measure was skipped."""
import json
import re
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


# Issue 15's goal: the client and discovery cost at most this on the 32-bit measure
GOAL_B = 4096
FROZEN_HEAP = "64k"
SETTLE_S = 3  # after "mqtt: connected": online, discovery, first telemetry sent, modules dropped
# Load Modules loaded at boot (the sim's sensors given values): discovery announces them all
LMS_BOOT = ("sim dht simple_1 21.5 40.2;sim distance pwm_5 1234;gpio RGB(0,0,0);dimmer dimmer_cache_load_n_init;"
            "switch switch_cache_load_n_init;motion_sensor get_PIR_state;air dht_measure;distance_HCSR04 distance_mm")
# Added to the frozen section's probe: each time ann.go appears, a whole announcement (as on
# connect: every entity of the loaded LMs) from the probe's task; micros.mqtt.put, through
# which every piece goes to the socket, is wrapped to collect and read the heap at each write:
# the peak over the heap in use just before (the wrapper is made before that).
ANN_PROBE = """
async def _ann():
    while True:
        await asyncio.sleep_ms(50)
        try:
            os.remove("ann.go")
        except OSError:
            continue
        from micros import mqtt as m
        pk = [0, 0, 0]
        put0 = m.put
        def put(p):
            gc.collect()
            x = gc.mem_alloc() - pk[0]
            if x > pk[1]:
                pk[1] = x
            pk[2] += 1
            return put0(p)
        now = m.lms()
        gc.collect()
        pk[0] = gc.mem_alloc()
        m.put = put
        try:
            await m._discovery(now, None)
        finally:
            m.put = put0
        print("annprobe:", pk[1], pk[2], now)
asyncio.create_task(_ann())
"""


def frozen_heap(exe, tmp, b, heap=FROZEN_HEAP):
    """The heap micros.mqtt costs on a binary with micrOS frozen in: a lamp node with the LMS_BOOT
    Load Modules, MQTT off and on (connected to b, idle), measured by the frozen section's probe
    (microsctl/bench/frozen.py: gc.collect() then gc.mem_alloc() inside the node); with it on,
    the peak of a whole discovery announcement over that. Returns a dict of the figures."""
    from microsctl.bench import frozen as fz

    res = {"exe": exe, "heap": heap}
    res["version"], res["bits"], _ = fz.binary_facts(exe, heap)
    for on in (False, True):
        sets = [f"mqtt={on}", "mqtthost=127.0.0.1", f"mqttport={b.port}", "mqttka=30", "mqttper=60",
                "devfid=ha01", "boothook=" + LMS_BOOT]
        n = fz.Node(tmp, exe, heap, (f"mqtt{int(on)}", "lamp", sets), frozen=True)
        n.node.drive = True  # the sim's sensors take the values LMS_BOOT gives them
        n.node.fs.joinpath("heapprobe.py").write_text(fz.PROBE + ANN_PROBE)
        with n:
            n.boot(timeout=20)
            if on:
                end = time.monotonic() + 20
                while "mqtt: connected" not in n._log():
                    if time.monotonic() > end:
                        raise MicrosError(f"the measured node did not connect to the broker; see {n.node.log}")
                    time.sleep(0.1)
            time.sleep(SETTLE_S)
            m = n.measure()
            if m["errors"]:
                raise MicrosError(f"the measured node is not fully up ({m['errors'][0]}); see {n.node.log}")
            res["on" if on else "off"] = m
            if on:
                n.node.fs.joinpath("ann.go").write_text("")
                end = time.monotonic() + 20
                while not (found := re.search(r"annprobe: (\d+) (\d+) (.*)", n._log())):
                    if time.monotonic() > end:
                        raise MicrosError(f"the announcement probe did not answer; see {n.node.log}")
                    time.sleep(0.1)
                res["peak"], res["writes"], res["lms"] = int(found.group(1)), int(found.group(2)), found.group(3)
    res["idle"] = res["on"]["used"] - res["off"]["used"]
    res["total"] = res["idle"] + res["peak"]
    return res


def frozen_report(res):
    """Markdown for frozen_heap()'s figures, with issue 15's verdict computed from them."""
    mods = lambda m: {x for x in m["modules"] if x.startswith("micros.mqtt")}  # noqa: E731
    off_mods, on_mods = mods(res["off"]), mods(res["on"])
    lines = [
        f"Binary: MicroPython {res['version']} unix port, {res['bits']}-bit, micrOS frozen in "
        f"(`{res['exe'].rsplit('/', 2)[-2]}/micropython`), `-X heapsize={res['heap']}`.",
        "A lamp node with gpio, dimmer, switch, motion_sensor, air and distance_HCSR04 loaded at boot,",
        "MQTT off and on (Mosquitto on loopback, keepalive 30 s, telemetry every 60 s). In use:",
        "`gc.collect()` then `gc.mem_alloc()` inside the node (the frozen section's probe), "
        f"{SETTLE_S} s after it connected",
        "(online, discovery and the first telemetry sent). The discovery peak: a whole announcement",
        f"({res['lms']}: every entity) run on the idle node, the heap collected and read at each of its",
        f"{res['writes']} socket writes, over the heap in use just before.",
        "",
        "| figure | bytes |",
        "|---|---|",
        f"| in use, MQTT off | {res['off']['used']:,} |",
        f"| in use, MQTT on, connected and idle | {res['on']['used']:,} |",
        f"| the client connected and idle (on - off) | {res['idle']:,} |",
        f"| a discovery announcement at its peak, over idle | {res['peak']:,} |",
        f"| the client and discovery (idle + peak) | {res['total']:,} |",
        "",
        f"MQTT off: micros.mqtt* modules loaded: {', '.join(sorted(off_mods)) or 'none'}; "
        f"on and idle: {', '.join(sorted(on_mods)) or 'none'}.",
    ]
    if res["bits"] == 32:
        ok = res["total"] <= GOAL_B
        lines += ["", f"Issue 15's goal, the client and discovery at most {GOAL_B:,} B on the 32-bit measure: "
                  f"{res['total']:,} B: {'meets' if ok else 'MISSES'}; nothing when off: "
                  f"{'meets' if not off_mods else 'MISSES'}."]
    else:
        lines += ["", "(Issue 15's 4 KB goal is judged on a 32-bit binary: objects are twice the size here.)"]
    return "\n".join(lines)


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
    import os

    from microsctl.bench import Skipped
    from microsctl.node.sim import frozen_core
    from microsctl.run import MICROPYTHON_ENV, micropython

    if not mosquitto():
        raise MicrosError("the mqtt benchmark needs Mosquitto: apt-get install mosquitto")
    if os.environ.get(MICROPYTHON_ENV):  # a binary given: its frozen measure, not the fleet
        exe = micropython()
        if frozen_core(exe) is None:
            raise Skipped(f"{exe} has no micrOS frozen in: build one with shared/tools/unix-frozen.sh")
        print("[bench] mqtt: the fleet is measured on the installed unix port: run without --micropython for it")
        with tempfile.TemporaryDirectory() as tmp, Mosquitto() as b:
            res = frozen_heap(exe, tmp, b)
        return f"mqtt-frozen-{res['bits']}", frozen_report(res)
    print("[bench] mqtt: the frozen 32-bit measure skipped: no binary given; build one with "
          "shared/tools/unix-frozen.sh and run 'invoke bench --only mqtt --micropython PATH' "
          "(CI cannot build MicroPython)", flush=True)
    nodes = 10 if quick else 50
    total = 500 if quick else 10000
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
        "32-bit, frozen: see `mqtt-frozen-32` (`invoke bench --only mqtt --micropython PATH`).",
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
