# MQTT 3.1.1 client of the micrOS core, on asyncio: nothing blocks the shell. Imported by
# core only when `mqtt` is True. Topics, under <mqttpfx>/<devfid>/:
#   status  "online" (retained, QoS 1) on connect; the last will "offline" (retained)
#   state   telemetry JSON every mqttper seconds (retained)
#   cmd     commands in: a shell line, or {"id": .., "cmd": "<line>"}
#   reply   the answer: the text, or {"id": .., "reply": "<text>"}
# Network data stays bytes/str: it is never interned, never an attribute name.
# Heap (issue 15: client and discovery within 4 KB, docs/mqtt.md): the socket itself, no
# asyncio Stream; no resident packet buffer (a PUBLISH body is read into one of its own size
# and dropped with it); one packet at a time on the socket (_BUSY), no asyncio.Lock; the cold
# paths are modules loaded while used and dropped after: micros.mqttnet (address, TLS,
# CONNECT), micros.mqttcmd (a command), micros.mqttha (discovery).
import asyncio
import gc
import time
from micropython import const
from micros import conf, core

_RX_MAX = const(1300)  # longest PUBLISH body read (a shell line is at most 1200 B); longer ones are dropped
_PEND_MAX = const(8)  # unacknowledged QoS 1 publishes kept for resend
_BACKOFF_MIN = const(1000)  # ms, doubled per failed attempt
_BACKOFF_MAX = const(32000)
_TICK_MS = const(250)
_WAIT_MS = const(2)  # a writer's poll while another holds the socket
# packet types (high nibble of the fixed header)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
# _st indices: the client's state, one list
_UP = const(0)  # connected and subscribed
_RX_T = const(1)  # ticks of the last packet received
_TX_T = const(2)  # ticks of the last packet sent
_PID = const(3)  # last packet id
_PING = const(4)  # ticks a PINGREQ went out unanswered, or None
_CONNS = const(5)  # connections made since boot
_DIRTY = const(6)  # telemetry due at the next tick: a command ran, an LM's state changed
_BUSY = const(7)  # a packet is being written: the others wait (asyncio's Stream.drain would lose theirs)
_SOCK = const(8)  # the broker's socket (non-blocking), or None
_BASE = const(9)  # "<prefix>/<devfid>/"
_ANN = const(10)  # lms() when discovery was last published on this connection
_IP = const(11)  # the broker's address as DNS last gave it (micros.mqttnet)

_st = [False, 0, 0, 0, None, 0, False, False, None, "", None, None]
_pend = []  # [pid, topic, payload, retain] awaiting PUBACK
_wh = bytearray(4)  # a short packet out (PUBACK, PINGREQ)
_rh = bytearray(4)  # a packet's first bytes in; a short packet's body


def topic(leaf):
    return _st[_BASE] + leaf


def rlen(buf, at, n):
    # MQTT "remaining length" into buf at `at`: 7 bits a byte, high bit = more; the next offset
    while True:
        b = n & 0x7F
        n >>= 7
        buf[at] = b | 0x80 if n else b
        at += 1
        if not n:
            return at


def pid():
    _st[_PID] = p = _st[_PID] % 65535 + 1
    return p


async def take():
    """Wait for the socket: one packet at a time (release() after)."""
    while _st[_BUSY]:
        await asyncio.sleep_ms(_WAIT_MS)
    _st[_BUSY] = True


def release():
    _st[_BUSY] = False
    _st[_TX_T] = time.ticks_ms()


def put(p):  # async (a generator): all of p (bytes-like) to the socket; the caller has take()n it
    s = _st[_SOCK]
    if s is None:
        raise OSError("not connected")
    mv = memoryview(p)
    while len(mv):
        n = s.write(mv)
        if n is None:  # would block: wait until the socket takes more
            yield asyncio.core._io_queue.queue_write(s)
        else:
            mv = mv[n:]


def _get(s, mv):  # async (a generator): fill mv from the socket
    while len(mv):
        yield asyncio.core._io_queue.queue_read(s)
        n = s.readinto(mv)
        if n == 0:
            raise OSError("broker closed the connection")
        if n:
            mv = mv[n:]


async def packet(s):
    """Read one packet: (type byte, body). The body is _rh's for 4 bytes or less, a bytearray
    of its own for a PUBLISH up to _RX_MAX, None for anything else (read and dropped)."""
    mv = memoryview(_rh)
    await _get(s, mv[:2])
    kind = _rh[0]
    b = _rh[1]
    n = b & 0x7F
    sh = 7
    while b & 0x80:
        if sh > 21:
            raise OSError("bad packet length")
        await _get(s, mv[1:2])
        b = _rh[1]
        n |= (b & 0x7F) << sh
        sh += 7
    if n <= 4:
        body = mv[:n]
    elif n <= _RX_MAX and kind & 0xF0 == _PUBLISH:
        body = bytearray(n)
    else:
        body = None
        mv = memoryview(bytearray(64))
        while n:
            k = min(n, 64)
            await _get(s, mv[:k])
            n -= k
    if body is not None:
        await _get(s, memoryview(body))
    _st[_RX_T] = time.ticks_ms()
    return kind, body


async def publish(leaf, payload, retain=False, qos=0):
    """Publish payload (str/bytes) on <prefix>/<devfid>/<leaf>; QoS 1 is resent on reconnect
    until the broker acknowledges it."""
    t = topic(leaf) if leaf[0] != "/" else leaf[1:]  # "/<topic>": a topic outside our tree
    if isinstance(payload, str):
        payload = payload.encode()
    p = 0
    if qos:
        p = pid()
        if len(_pend) >= _PEND_MAX:
            _pend.pop(0)  # the oldest is given up, the queue stays bounded
        _pend.append([p, t, payload, retain])
    if _st[_UP]:
        await _pub(p, t, payload, retain, False)


async def _pub(p, t, payload, retain, dup):
    # the fixed header, topic and packet id in one small write, the payload in a second
    t = t.encode()
    n = 2 + len(t) + (2 if p else 0)
    h = bytearray(n + 5)
    h[0] = _PUBLISH | (0x08 if dup else 0) | (0x02 if p else 0) | (0x01 if retain else 0)
    at = rlen(h, 1, n + len(payload))
    h[at] = len(t) >> 8
    h[at + 1] = len(t) & 0xFF
    h[at + 2 : at + 2 + len(t)] = t
    at += 2 + len(t)
    if p:
        h[at] = p >> 8
        h[at + 1] = p & 0xFF
        at += 2
    await take()
    try:
        await put(memoryview(h)[:at])
        await put(payload)
    finally:
        release()


async def short(kind, p=None):
    # PUBACK, PINGREQ: two or four bytes
    await take()
    try:
        _wh[0] = kind
        _wh[1] = 0 if p is None else 2
        if p is not None:
            _wh[2] = p >> 8
            _wh[3] = p & 0xFF
        await put(memoryview(_wh)[: 2 if p is None else 4])
    finally:
        release()


def _reader(s):  # async (a generator): the reader task
    while True:
        # idle here: only this frame waits (packet() and its reads exist while a packet comes in)
        yield asyncio.core._io_queue.queue_read(s)
        kind, body = yield from packet(s)
        t = kind & 0xF0
        if t == _PUBLISH and body is not None and len(body) > 2:
            tl = (body[0] << 8) | body[1]
            at = 2 + tl
            if kind & 0x06:  # QoS 1 (or 2, answered as 1)
                yield from short(_PUBACK, (body[at] << 8) | body[at + 1])  # at least once: acknowledged before it runs
                at += 2
            if body[2 : 2 + tl] == topic("cmd").encode():
                yield from _command(body, at)
        elif t == _PUBACK and body is not None and len(body) == 2:
            p = (body[0] << 8) | body[1]
            for i in range(len(_pend)):
                if _pend[i][0] == p:
                    _pend.pop(i)
                    break
        elif t == _PINGRESP:
            _st[_PING] = None
        body = None


async def _command(body, at):
    from micros import mqttcmd  # loaded per command, dropped after

    try:
        await mqttcmd.run(body, at)
    finally:
        core.drop("mqttcmd")


def rssi():
    try:
        import network

        sta = network.WLAN(network.STA_IF)
        return sta.status("rssi") if sta.isconnected() else None
    except (ImportError, OSError, ValueError, TypeError):
        return None


def state():
    """The telemetry record: free heap, RSSI, uptime, and each loaded LM's state()."""
    import sys

    gc.collect()
    d = {"memfree": gc.mem_free(), "rssi": rssi(), "uptime": core.uptime()}
    for full in list(sys.modules):
        i = full.find("LM_")
        if i >= 0:
            f = getattr(sys.modules[full], "state", None)
            if f:
                try:
                    d[full[i + 3 :]] = f()
                except Exception as e:  # an LM's failure must not stop telemetry
                    d[full[i + 3 :]] = "Error: %s" % e
    return d


def changed():
    """Telemetry at the next tick rather than at the period's end (an LM's IRQ may call it)."""
    _st[_DIRTY] = True


def lms():
    """The loaded Load Modules' names, sorted, as one string: discovery follows it."""
    import sys

    return " ".join(sorted(m[m.find("LM_") + 3 :] for m in sys.modules if "LM_" in m))


async def telemetry():
    now = lms()
    if now != _st[_ANN]:
        old = _st[_ANN]
        _st[_ANN] = now
        if conf.get("mqttdisc") != "n/a":
            await _discovery(now, old)
    import json

    await publish("state", json.dumps(state()), retain=True)


async def _discovery(now, old):
    from micros import mqttha  # loaded to announce, dropped after

    try:  # one message at a time, never built as one string
        await mqttha.announce(topic(""), now, old)
    finally:
        core.drop("mqttha")
    gc.collect()


async def _connect(ctx):
    from micros import mqttnet  # how the broker is reached: dropped once connected

    try:
        await mqttnet.connect(ctx)
    finally:
        core.drop("mqttnet")


async def _session():
    import sys

    s = _st[_SOCK]
    _st[_UP] = True
    _st[_PING] = None
    _st[_CONNS] += 1
    rd = asyncio.create_task(_reader(s))  # first: PUBACKs of what follows are taken in as they come
    try:
        for p in _pend:  # unacknowledged QoS 1 from the last session, as duplicates
            await _pub(p[0], p[1], p[2], p[3], True)
        await publish("status", "online", retain=True, qos=1)
        _st[_ANN] = None  # all of discovery again on each connection
        await telemetry()
        ka = conf.get("mqttka") * 500  # ms: half the keepalive
        last = time.ticks_ms()
        nmod = len(sys.modules)
        while True:
            await asyncio.sleep_ms(_TICK_MS)
            if rd.done():
                await rd  # raises the reader's error
                return
            now = time.ticks_ms()
            if _st[_PING] is not None and time.ticks_diff(now, _st[_PING]) > ka:
                raise OSError("broker silent (no PINGRESP)")
            if nmod != len(sys.modules):  # an LM loaded or unloaded: its entities at once
                nmod = len(sys.modules)
                _st[_DIRTY] = True
            if _st[_DIRTY] or time.ticks_diff(now, last) >= conf.get("mqttper") * 1000:
                last = now
                _st[_DIRTY] = False
                await telemetry()
                nmod = len(sys.modules)
            # a ping when we have been quiet, or the broker has: a half-open link shows as no PINGRESP
            if _st[_PING] is None and (time.ticks_diff(now, _st[_TX_T]) >= ka
                                       or time.ticks_diff(now, _st[_RX_T]) >= ka):
                _st[_PING] = now
                await short(_PINGREQ)
    finally:
        _st[_UP] = False
        rd.cancel()


def _close():
    s = _st[_SOCK]
    _st[_SOCK] = None
    _st[_BUSY] = False
    if s:
        try:
            s.close()
        except OSError:
            pass


async def run():
    """Connect, serve, and reconnect with backoff, for ever (TLS refused: not at all)."""
    ctx = None
    if conf.get("mqtttls"):
        from micros import mqttnet

        try:
            ctx = mqttnet.context()  # kept: it holds the CA certificate
        except Exception as e:  # this board cannot have TLS: said once, the client not started
            print("mqtt: %s" % e)
            return
        finally:
            mqttnet = None
            core.drop("mqttnet")
    delay = _BACKOFF_MIN
    while True:
        try:
            await _connect(ctx)
            delay = _BACKOFF_MIN
            print("mqtt: connected to %s:%d as %s" % (conf.get("mqtthost"), conf.get("mqttport"), topic("")))
            await _session()
        except Exception as e:  # the supervisor: any failure ends this session only
            print("mqtt: %s; again in %d ms" % (" ".join(str(e).split()), delay))  # mbedTLS: "\n<text>\n"
        _close()
        # jitter, so a fleet does not come back in one burst
        await asyncio.sleep_ms(delay + time.ticks_us() % (delay // 4 + 1))
        delay = min(delay * 2, _BACKOFF_MAX)


def start():
    _st[_BASE] = "%s/%s/" % (conf.get("mqttpfx"), conf.get("devfid"))
    return asyncio.create_task(run())
