# A DNS client on asyncio: resolves a host name without blocking the event loop.
# socket.getaddrinfo blocks on every port at v1.28.0: extmod/modlwip.c (ESP8266)
# spins in poll_sockets() until lwIP's DNS callback fires, ports/esp32/modsocket.c
# waits in lwip_getaddrinfo(), the unix port in libc; with the broker's name
# unresolvable the shell would stall for lwIP's whole retry window on every
# reconnect. Here one A query (RFC 1035 §4) goes over UDP to the station's DNS
# server and the reply is awaited as a task: bounded time, the shell keeps serving.
# Loaded by micros.mqtt for a broker given by name, dropped after.
import asyncio
import socket
from micropython import const

_TRIES = const(2)
_WAIT_MS = const(2000)  # per try: at most _TRIES x _WAIT_MS in all


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


def _skip(buf, at):
    # past a (possibly compressed) name
    while True:
        n = buf[at]
        if n >= 0xC0:
            return at + 2
        if not n:
            return at + 1
        at += 1 + n


def _answer(buf, n, qid):
    """The first A record of a reply as "a.b.c.d"; OSError if the name does not resolve."""
    if n < 12 or (buf[0] << 8 | buf[1]) != qid or not buf[2] & 0x80:
        return None  # not our reply: keep waiting
    rc = buf[3] & 0x0F
    if rc:
        raise OSError("name not found" if rc == 3 else "DNS error %d" % rc)
    at = 12
    for _ in range(buf[4] << 8 | buf[5]):  # questions
        at = _skip(buf, at) + 4
    for _ in range(buf[6] << 8 | buf[7]):  # answers (a CNAME chain ends in the A record)
        at = _skip(buf, at)
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
