# How micros.mqtt reaches its broker: the address (a DNS client on asyncio), the TLS
# context, the socket, CONNECT and SUBSCRIBE. Loaded for each connection attempt and
# dropped after: none of it stays in RAM while connected.
#
# socket.getaddrinfo blocks on every port at v1.28.0: extmod/modlwip.c (ESP8266)
# spins in poll_sockets() until lwIP's DNS callback fires, ports/esp32/modsocket.c
# waits in lwip_getaddrinfo(), the unix port in libc, and extmod/asyncio/stream.py's
# open_connection calls it ("TODO this is blocking!"); with the broker's name
# unresolvable the shell would stall for lwIP's whole retry window on every
# reconnect. Here one A query (RFC 1035 §4) goes over UDP to the station's DNS
# server and the reply is awaited as a task: bounded time, the shell keeps serving.
import asyncio
import gc
import socket
from errno import EINPROGRESS
from micropython import const
from micros import conf, mqtt

_TRIES = const(2)
_WAIT_MS = const(2000)  # per try: at most _TRIES x _WAIT_MS in all
_TLS_ROOM = const(32768)  # B free for a TLS session: 28 KB measured at its peak (docs/mqtt.md)
_DNS_BUF = const(512)  # a DNS reply over UDP is at most 512 B (RFC 1035 §4.2.1)
_IP = const(11)  # micros.mqtt's _st indices
_SOCK = const(8)
_CONNECT = const(0x10)
_CONNACK = const(0x20)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)


def literal(host):
    # a dotted IPv4 address, or localhost: getaddrinfo answers with no lookup
    p = host.split(".")
    return host == "localhost" or len(p) == 4 and all(x.isdigit() and len(x) < 4 for x in p)


async def address(host, ip):
    """The broker's address. A name is asked of DNS as a task, once per connection attempt and
    never while connected; the last answer is kept in ip[_IP] for when DNS fails. Literals, and
    mDNS .local names (ESP32's getaddrinfo asks mDNS, blocking), go to getaddrinfo as they are."""
    if literal(host) or host.endswith(".local"):
        return host
    try:
        ip[_IP] = await resolve(host, bytearray(_DNS_BUF))
    except OSError as e:
        if ip[_IP] is None:
            raise OSError("%s: %s" % (host, e))
        print("mqtt: %s: %s; using %s" % (host, e, ip[_IP]))
    return ip[_IP]


def context():
    """An SSLContext for mqtttls, or ValueError saying why this board cannot have one."""
    try:
        import tls
    except ImportError:
        raise ValueError("TLS: this firmware has no tls module; set mqtttls False")
    room = _room()
    if room is not None and room < _TLS_ROOM:
        raise ValueError("TLS: %d B free for it, a session needs %d B; set mqtttls False" % (room, _TLS_ROOM))
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ca = conf.get("mqttca")
    if ca == "n/a":
        ctx.verify_mode = tls.CERT_NONE  # encrypted, the broker not authenticated (docs/mqtt.md)
        return ctx
    if not hasattr(ctx, "load_verify_locations"):  # axTLS (ESP8266): CERT_NONE only
        raise ValueError("TLS: this firmware cannot check certificates; set mqttca n/a or use an ESP32")
    try:
        with open(ca, "rb") as f:
            ctx.load_verify_locations(f.read())
    except (OSError, ValueError) as e:
        raise ValueError("TLS: CA file %s: %s (a DER certificate: openssl x509 -outform der)" % (ca, e))
    ctx.verify_mode = tls.CERT_REQUIRED
    return ctx


def _room():
    # free RAM where the port's TLS library allocates, or None where that is the host's:
    # ESP32's mbedTLS takes the IDF heap (ports/esp32/boards/sdkconfig.base,
    # CONFIG_MBEDTLS_DEFAULT_MEM_ALLOC), ESP8266's axTLS the MicroPython heap
    # (ports/esp8266/posix_helpers.c), the unix port's mbedTLS libc's malloc
    import sys

    gc.collect()
    if sys.platform == "esp32":
        import esp32

        return sum(h[1] for h in esp32.idf_heap_info(esp32.HEAP_DATA))
    return gc.mem_free() if sys.platform == "esp8266" else None


async def connect(ctx):
    """Open the broker's socket (TLS over it when ctx is an SSLContext) into micros.mqtt's
    state, then CONNECT (clean session, the will, user/password) and SUBSCRIBE to our cmd
    topic (QoS 1); OSError when the broker refuses."""
    host = conf.get("mqtthost")
    if host == "n/a":
        raise OSError("no broker: set mqtthost")
    st = mqtt._st
    st[_SOCK] = s = await _open(await address(host, st), host, ctx)
    user = conf.get("mqttuser")
    pwd = conf.get("mqttpwd")
    cid = "micros-" + conf.get("hwuid").replace(":", "")
    if cid == "micros-n/a":
        cid = "micros-" + conf.get("devfid")
    ka = conf.get("mqttka")
    # variable header: protocol "MQTT" level 4, flags: clean session, will, will QoS 1, will retained
    flags = 0x02 | 0x04 | 0x08 | 0x20
    p = [b"\x00\x04MQTT\x04", None, _s(cid), _s(mqtt.topic("status")), _s("offline")]
    if user != "n/a":
        flags |= 0x80
        p.append(_s(user))
        if pwd != "n/a":
            flags |= 0x40
            p.append(_s(pwd))
    p[1] = bytes((flags, ka >> 8, ka & 0xFF))
    await _send(_CONNECT, p)
    kind, body = await mqtt.packet(s)
    if kind != _CONNACK or body is None or len(body) != 2:
        raise OSError("no CONNACK")
    if body[1]:
        raise OSError("broker refused: %s" % ("bad user or password" if body[1] in (4, 5) else "code %d" % body[1]))
    pid = mqtt.pid()
    await _send(_SUBSCRIBE, [bytes((pid >> 8, pid & 0xFF)), _s(mqtt.topic("cmd")), b"\x01"])
    kind, body = await mqtt.packet(s)
    if kind != _SUBACK or body is None or len(body) != 3 or body[2] == 0x80:
        raise OSError("subscription refused")


def _s(x):
    # an MQTT string: its UTF-8 length, then the bytes
    x = x.encode()
    return bytes((len(x) >> 8, len(x) & 0xFF)) + x


async def _send(kind, parts):
    # one packet: the fixed header, then the parts (bytes), in one write
    n = 0
    for x in parts:
        n += len(x)
    out = bytearray(n + 5)
    out[0] = kind
    at = mqtt.rlen(out, 1, n)
    for x in parts:
        out[at : at + len(x)] = x
        at += len(x)
    await mqtt.take()
    try:
        await mqtt.put(memoryview(out)[:at])
    finally:
        mqtt.release()


def _open(addr, host, ctx):
    # asyncio.open_connection's steps (extmod/asyncio/stream.py), given an address: its
    # getaddrinfo is then no lookup; TCP_NODELAY goes on the socket before TLS wraps it
    ai = socket.getaddrinfo(addr, conf.get("mqttport"), 0, socket.SOCK_STREAM)[0]
    s = socket.socket(ai[0], ai[1], ai[2])
    s.setblocking(False)
    try:  # small packets out at once (lwIP ports name it; the unix port has Linux's 6, 1)
        s.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
    except (OSError, AttributeError):
        pass
    try:
        s.connect(ai[-1])
    except OSError as e:
        if e.errno != EINPROGRESS:
            s.close()
            raise
    if ctx:
        s = ctx.wrap_socket(s, server_hostname=host, do_handshake_on_connect=False)
        s.setblocking(False)
    yield asyncio.core._io_queue.queue_write(s)  # connected (or failed: the first write says)
    return s


def server():
    # the DNS server the station got by DHCP (or the static one): ifconfig()[3]
    import network

    return network.WLAN(network.STA_IF).ifconfig()[3]


def _query(buf, host, qid):
    # header: id, RD, one question; then the name as labels, QTYPE A, QCLASS IN
    buf[0] = qid >> 8
    buf[1] = qid & 0xFF
    buf[2:12] = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    at = 12
    for lab in host.split("."):
        b = lab.encode()
        if not 0 < len(b) < 64 or at + len(b) + 6 > len(buf):
            raise OSError("bad host name")
        buf[at] = len(b)
        buf[at + 1 : at + 1 + len(b)] = b
        at += 1 + len(b)
    buf[at : at + 5] = b"\x00\x00\x01\x00\x01"
    return at + 5


def _skip(buf, at, n):
    # past a (possibly compressed) name; a name that runs past the reply's n bytes is an error
    while at < n:
        k = buf[at]
        if k >= 0xC0:
            at += 2
            break
        at += 1 + k
        if not k:
            break
    if at > n:
        raise OSError("bad DNS reply")
    return at


def _answer(buf, n, qid):
    """The first A record of a reply as "a.b.c.d"; OSError if the name does not resolve or
    the reply is malformed (the kept address is used then)."""
    if n < 12 or (buf[0] << 8 | buf[1]) != qid or not buf[2] & 0x80:
        return None  # not our reply: keep waiting
    rc = buf[3] & 0x0F
    if rc:
        raise OSError("name not found" if rc == 3 else "DNS error %d" % rc)
    at = 12
    for _ in range(buf[4] << 8 | buf[5]):  # questions
        at = _skip(buf, at, n) + 4
    for _ in range(buf[6] << 8 | buf[7]):  # answers (a CNAME chain ends in the A record)
        at = _skip(buf, at, n)
        if at + 10 > n:
            break
        ln = buf[at + 8] << 8 | buf[at + 9]
        if buf[at] << 8 | buf[at + 1] == 1 and ln == 4 and at + 14 <= n:
            return "%d.%d.%d.%d" % tuple(buf[at + 10 : at + 14])
        at += 10 + ln
    raise OSError("no address for the name")


async def resolve(host, buf):
    """host -> "a.b.c.d", asking the station's DNS server; buf: a scratch bytearray
    (512 B or more: a DNS reply over UDP is at most 512 B)."""
    import time

    srv = server()
    if srv == "0.0.0.0":
        raise OSError("no DNS server")
    qid = time.ticks_us() & 0xFFFF
    n = _query(buf, host, qid)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        s.connect(socket.getaddrinfo(srv, 53)[0][-1])  # a literal: no lookup
        q = bytes(buf[:n])
        r = asyncio.StreamReader(s)
        for _ in range(_TRIES):
            s.send(q)
            try:
                while True:
                    got = await asyncio.wait_for_ms(r.readinto(buf), _WAIT_MS)
                    if got:
                        ip = _answer(buf, got, qid)
                        if ip:
                            return ip
            except asyncio.TimeoutError:
                pass
        raise OSError("DNS server %s did not answer" % srv)
    finally:
        s.close()
