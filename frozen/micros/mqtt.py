# MQTT 3.1.1 client of the micrOS core, on asyncio streams: nothing blocks the
# shell. Imported by core only when `mqtt` is True. Topics, under <mqttpfx>/<devfid>/:
#   status  "online" (retained, QoS 1) on connect; the last will "offline" (retained)
#   state   telemetry JSON every mqttper seconds (retained)
#   cmd     commands in: a shell line, or {"id": .., "cmd": "<line>"}
#   reply   the answer: the text, or {"id": .., "reply": "<text>"}
# Network data stays bytes/str: it is never interned, never an attribute name.
import asyncio
import gc
import json
import time
from micropython import const
from micros import call, conf, core, shell

_RX_MAX = const(768)  # longest packet body kept; longer ones are read and dropped
_PEND_MAX = const(8)  # unacknowledged QoS 1 publishes kept for resend
_BACKOFF_MIN = const(1000)  # ms, doubled per failed attempt
_BACKOFF_MAX = const(32000)
_TICK_MS = const(250)
# packet types (high nibble of the fixed header)
_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
# _st indices: the session's state, one list
_UP = const(0)  # connected and subscribed
_RX_T = const(1)  # ticks of the last packet received
_TX_T = const(2)  # ticks of the last packet sent
_PID = const(3)  # last packet id
_PING = const(4)  # ticks a PINGREQ went out unanswered, or None
_CONNS = const(5)  # connections made since boot
_DIRTY = const(6)  # telemetry due at the next tick: a command ran, an LM's state changed

_rx = bytearray(_RX_MAX)
_mv = memoryview(_rx)
_TX_MAX = const(512)
_tx = bytearray(_TX_MAX)  # a PUBLISH that fits is sent in one write: no Nagle wait between parts
_txv = memoryview(_tx)
_hdr = bytearray(7)  # fixed header + topic length, or a whole short packet
_st = [False, 0, 0, 0, None, 0, False]
_pend = []  # [pid, topic, payload, retain] awaiting PUBACK
_io = [None, None]  # reader, writer
_base = [""]  # "<prefix>/<devfid>/"
_ann = [None]  # lms() when discovery was last published on this connection
_ip = [None]  # the broker's address as DNS last gave it (micros.mqttnet)


class MQTTError(OSError):
    pass


def topic(leaf):
    return _base[0] + leaf


def _rlen(buf, at, n):
    # MQTT "remaining length": 7 bits a byte, high bit = more; returns the next offset
    while True:
        b = n & 0x7F
        n >>= 7
        buf[at] = b | 0x80 if n else b
        at += 1
        if not n:
            return at


def _str(w, s):
    # a length-prefixed UTF-8 string field
    if isinstance(s, str):
        s = s.encode()
    _hdr[0] = len(s) >> 8
    _hdr[1] = len(s) & 0xFF
    w.write(_hdr[:2])
    w.write(s)


async def _send(w):
    _st[_TX_T] = time.ticks_ms()
    await w.drain()


# One packet at a time on the stream: Stream.drain() empties out_buf after its awaits, so a
# second writer appending meanwhile would be lost (micropython extmod/asyncio/stream.py).
_lock = asyncio.Lock()


async def publish(leaf, payload, retain=False, qos=0):
    """Publish payload (str/bytes) on <prefix>/<devfid>/<leaf>; QoS 1 is resent on reconnect
    until the broker acknowledges it."""
    t = topic(leaf) if leaf[0] != "/" else leaf[1:]  # "/<topic>": a topic outside our tree
    if isinstance(payload, str):
        payload = payload.encode()
    pid = 0
    if qos:
        _st[_PID] = pid = _st[_PID] % 65535 + 1
        if len(_pend) >= _PEND_MAX:
            _pend.pop(0)  # the oldest is given up, the queue stays bounded
        _pend.append([pid, t, payload, retain])
    if _st[_UP]:
        await _pub(_io[1], pid, t, payload, retain, False)


async def _pub(w, pid, t, payload, retain, dup):
    await _lock.acquire()
    try:
        _pub1(w, pid, t, payload, retain, dup)
        await _send(w)
    finally:
        _lock.release()


def _pub1(w, pid, t, payload, retain, dup):
    tb = t.encode()
    n = 2 + len(tb) + len(payload) + (2 if pid else 0)
    if n + 5 <= _TX_MAX:
        _tx[0] = _PUBLISH | (0x08 if dup else 0) | (0x02 if pid else 0) | (0x01 if retain else 0)
        at = _rlen(_tx, 1, n)
        _tx[at] = len(tb) >> 8
        _tx[at + 1] = len(tb) & 0xFF
        at += 2
        _txv[at : at + len(tb)] = tb
        at += len(tb)
        if pid:
            _tx[at] = pid >> 8
            _tx[at + 1] = pid & 0xFF
            at += 2
        _txv[at : at + len(payload)] = payload
        w.write(_txv[: at + len(payload)])
        return
    _hdr[0] = _PUBLISH | (0x08 if dup else 0) | (0x02 if pid else 0) | (0x01 if retain else 0)
    w.write(_hdr[: _rlen(_hdr, 1, n)])
    _str(w, tb)
    if pid:
        _hdr[0] = pid >> 8
        _hdr[1] = pid & 0xFF
        w.write(_hdr[:2])
    w.write(payload)


async def _short(w, kind, pid=None):
    # PUBACK, PINGREQ, DISCONNECT: two or four bytes
    await _lock.acquire()
    try:
        _short1(w, kind, pid)
        await _send(w)
    finally:
        _lock.release()


def _short1(w, kind, pid):
    _hdr[0] = kind
    _hdr[1] = 0 if pid is None else 2
    if pid is not None:
        _hdr[2] = pid >> 8
        _hdr[3] = pid & 0xFF
    w.write(_hdr[: 2 if pid is None else 4])


async def _fill(r, n):
    # read exactly n bytes into _rx
    got = 0
    while got < n:
        k = await r.readinto(_mv[got:n])
        if k == 0:
            raise MQTTError("broker closed the connection")
        if k:
            got += k


async def _packet(r):
    """Read one packet: (type byte, body length); the body is in _rx, or dropped when longer
    than _RX_MAX (length returned negative)."""
    await _fill(r, 1)
    kind = _rx[0]
    n = 0
    shift = 0
    while True:
        await _fill(r, 1)
        n |= (_rx[0] & 0x7F) << shift
        if not _rx[0] & 0x80:
            break
        shift += 7
        if shift > 21:
            raise MQTTError("bad packet length")
    if n > _RX_MAX:
        left = n
        while left:
            k = min(left, _RX_MAX)
            await _fill(r, k)
            left -= k
        return kind, -n
    await _fill(r, n)
    _st[_RX_T] = time.ticks_ms()
    return kind, n


async def _connect(ctx):
    host = conf.get("mqtthost")
    if host == "n/a":
        raise MQTTError("no broker: set mqtthost")
    from micros import mqttnet  # how the broker is reached: dropped once connected

    try:
        r = w = await mqttnet.connect(host, ctx, _ip, _rx)
    finally:
        core.drop("mqttnet")
    _io[0] = r
    _io[1] = w
    user = conf.get("mqttuser")
    pwd = conf.get("mqttpwd")
    cid = "micros-" + conf.get("hwuid").replace(":", "")
    if cid == "micros-n/a":
        cid = "micros-" + conf.get("devfid")
    cid = cid.encode()
    will = topic("status").encode()
    flags = 0x02 | 0x04 | 0x08 | 0x20  # clean session, will, will QoS 1, will retained
    n = 10 + 2 + len(cid) + 2 + len(will) + 2 + 7
    if user != "n/a":
        flags |= 0x80
        user = user.encode()
        n += 2 + len(user)
        if pwd != "n/a":
            flags |= 0x40
            pwd = pwd.encode()
            n += 2 + len(pwd)
    _hdr[0] = _CONNECT
    w.write(_hdr[: _rlen(_hdr, 1, n)])
    _str(w, "MQTT")
    ka = conf.get("mqttka")
    w.write(bytes((4, flags, ka >> 8, ka & 0xFF)))
    _str(w, cid)
    _str(w, will)
    _str(w, "offline")
    if flags & 0x80:
        _str(w, user)
    if flags & 0x40:
        _str(w, pwd)
    await _send(w)
    kind, n = await _packet(r)
    if kind != _CONNACK or n != 2:
        raise MQTTError("no CONNACK")
    if _rx[1]:
        raise MQTTError("broker refused: %s" % ("bad user or password" if _rx[1] in (4, 5) else "code %d" % _rx[1]))
    # subscribe to our cmd topic, QoS 1
    t = topic("cmd").encode()
    _st[_PID] = pid = _st[_PID] % 65535 + 1
    _hdr[0] = _SUBSCRIBE
    w.write(_hdr[: _rlen(_hdr, 1, 2 + 2 + len(t) + 1)])
    _hdr[0] = pid >> 8
    _hdr[1] = pid & 0xFF
    w.write(_hdr[:2])
    _str(w, t)
    w.write(b"\x01")
    await _send(w)
    kind, n = await _packet(r)
    if kind != _SUBACK or _rx[2] == 0x80:
        raise MQTTError("subscription refused")


def _unknown(cl, line):
    """The error for a call whose module or function does not exist, found by comparing text,
    or None. call.module/function would __import__/getattr the name first, and either interns
    it (py/qstr.c keeps every qstr for good): a name from the network must not get that far."""
    if cl[3] or " " not in line:
        return None  # conf mode or a built-in: no name is looked up
    try:
        mod, func, _, _ = call.parse(line[:-5] if line.endswith(">json") else line)
    except call.CallError as e:
        return "Error: %s" % e
    import os
    import sys
    from micros import LMS

    m = sys.modules.get("micros.LM_" + mod) or sys.modules.get("LM_" + mod)
    if m is None and mod not in (LMS.split() if isinstance(LMS, str) else LMS):
        for d in sys.path:
            for ext in (".mpy", ".py"):
                try:
                    os.stat("%s/LM_%s%s" % (d or ".", mod, ext))
                    break
                except OSError:
                    pass
            else:
                continue
            break
        else:
            return "Error: unknown module %s (help lists them)" % mod
    if m is None:
        try:
            m = call.module(mod)  # it exists: its name is interned already (a frozen or file name)
        except call.CallError as e:
            return "Error: %s" % e
    if func not in m.__dict__:
        return "Error: %s has no function %s (help lists them)" % (mod, func)
    return None


async def _command(payload):
    """Run a cmd payload the way the shell runs a line; publish the reply."""
    cid = None
    js = False
    try:
        text = payload.decode()
    except UnicodeError:
        text = "\x00"
    if text[:1] == "{":
        js = True
        try:
            req = json.loads(text)
            cid = req.get("id")
            text = req["cmd"]
            if not isinstance(text, str):
                raise ValueError
        except (ValueError, KeyError, AttributeError, TypeError):
            await publish("reply", json.dumps({"id": cid, "reply": "Error: give {\"id\": .., \"cmd\": \"<line>\"}"}), qos=1)
            return
    # a shell client record (micros.shell): no writer, conf mode off, authenticated: the
    # broker's credentials are the gate for whoever may publish on cmd
    cl = [None, None, 0, False, True]
    out = []
    for line in text.split("\n"):
        if line.strip():
            res = _unknown(cl, line.strip()) or shell._answer(cl, line.encode())  # the shell's own path
            if res is None:  # exit
                break
            out.append(res)
    res = "\n".join(out)
    out = None
    _st[_DIRTY] = True  # HA reads a command's effect from the state
    if js:
        res = json.dumps({"id": cid, "reply": res})
    await publish("reply", res, qos=1)


async def _reader(r):
    w = _io[1]
    while True:
        kind, n = await _packet(r)
        t = kind & 0xF0
        if t == _PUBLISH and n > 0:
            tl = (_rx[0] << 8) | _rx[1]
            at = 2 + tl
            qos = (kind >> 1) & 3
            if qos:
                pid = (_rx[at] << 8) | _rx[at + 1]
                at += 2
                await _short(w, _PUBACK, pid)  # at least once: acknowledged before it runs
            if bytes(_mv[2 : 2 + tl]) == topic("cmd").encode():
                await _command(bytes(_mv[at:n]))
        elif t == _PUBACK and n == 2:
            pid = (_rx[0] << 8) | _rx[1]
            for i in range(len(_pend)):
                if _pend[i][0] == pid:
                    _pend.pop(i)
                    break
        elif t == _PINGRESP:
            _st[_PING] = None


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
    if now != _ann[0]:
        await _discovery(now)
    await publish("state", json.dumps(state()), retain=True)


async def _discovery(now):
    old = _ann[0]
    _ann[0] = now
    if conf.get("mqttdisc") == "n/a":
        return
    from micros import mqttha

    try:  # one message at a time, never built as one string
        await mqttha.announce(topic(""), now, old)
    finally:
        core.drop("mqttha")
    gc.collect()


async def _session():
    r, w = _io
    _st[_UP] = True
    _st[_PING] = None
    _st[_CONNS] += 1
    rd = asyncio.create_task(_reader(r))  # first: PUBACKs of what follows are taken in as they come
    for p in _pend:  # unacknowledged QoS 1 from the last session, as duplicates
        await _pub(w, p[0], p[1], p[2], p[3], True)
    await publish("status", "online", retain=True, qos=1)
    _ann[0] = None  # all of discovery again on each connection
    await telemetry()
    ka = conf.get("mqttka") * 1000
    per = conf.get("mqttper") * 1000
    last = time.ticks_ms()
    import sys

    nmod = len(sys.modules)
    try:
        while True:
            await asyncio.sleep_ms(_TICK_MS)
            if rd.done():
                await rd  # raises the reader's error
                return
            now = time.ticks_ms()
            if _st[_PING] is not None and time.ticks_diff(now, _st[_PING]) > ka // 2:
                raise MQTTError("broker silent (no PINGRESP)")
            if nmod != len(sys.modules):  # an LM loaded or unloaded: its entities at once
                nmod = len(sys.modules)
                if lms() != _ann[0]:
                    _st[_DIRTY] = True
            if _st[_DIRTY] or time.ticks_diff(now, last) >= per:
                last = now
                _st[_DIRTY] = False
                await telemetry()
            # a ping when we have been quiet, or the broker has: a half-open link shows as no PINGRESP
            if _st[_PING] is None and (time.ticks_diff(now, _st[_TX_T]) >= ka // 2
                                       or time.ticks_diff(now, _st[_RX_T]) >= ka // 2):
                _st[_PING] = now
                await _short(w, _PINGREQ)
    finally:
        _st[_UP] = False
        rd.cancel()


def _close():
    w = _io[1]
    _io[0] = _io[1] = None
    if w:
        try:
            w.s.close()  # the socket itself: Stream.close() does not close it
        except (OSError, AttributeError):
            pass


async def run():
    """Connect, serve, and reconnect with backoff, for ever (TLS refused: not at all)."""
    ctx = None
    if conf.get("mqtttls"):
        try:
            from micros import mqttnet

            ctx = mqttnet.context()  # kept: it holds the CA certificate
        except MQTTError as e:
            print("mqtt: %s" % e)
            return
        finally:
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
    _base[0] = "%s/%s/" % (conf.get("mqttpfx"), conf.get("devfid"))
    return asyncio.create_task(run())


def info():
    return {"connected": _st[_UP], "connections": _st[_CONNS], "pending": len(_pend), "base": _base[0]}
