# Shell authentication: challenge-response over HMAC-SHA256, so the key never
# crosses the network. Loaded by micros.shell only when auth is on (conf `auth`
# True and an `authkey` set); with auth off this module is never imported.
#
# The exchange (docs/security.md):
#   node:   "Auth: hmac-sha256 <nonce>\n" + the prompt, on connect; <nonce> is 32 hex
#           digits from os.urandom, new for every connection, used for one answer
#   client: "auth <hex of HMAC-SHA256(authkey, nonce as its 32 ASCII hex digits)>"
#   node:   "Authenticated", or "Error: auth failed" and the connection closes
# Until then only hello, version, exit and auth are served; every other line
# answers "Error: auth required". A failed answer locks its address out for
# 1, 2, 4 ... 256 s (a bounded table of _ROWS addresses, no growth per address).
import binascii
import hashlib
import os
import time
from micropython import const

_BLOCK = const(64)  # SHA-256 block size, bytes (RFC 2104)
_ROWS = const(8)  # addresses with a failure on record
_MAX_SHIFT = const(8)  # lockout tops out at 2**8 s
_W = const(0)  # the shell's connection record: its writer ...
_STATE = const(4)  # ... and auth state: None off, the nonce (bytes) pending, True proven
_ADDR = const(0)  # a row of _table: address, failures in a row, locked until (ticks_ms)
_FAILS = const(1)
_UNTIL = const(2)

FAILS = 0  # wrong answers since boot (system info)
LOCKED = 0  # answers refused unread during a lockout
_table = [[None, 0, 0] for _ in range(_ROWS)]


def hmac(key, msg):
    """HMAC-SHA256 (RFC 2104) on hashlib.sha256, the one hash every port has
    (py/mpconfig.h MICROPY_PY_HASHLIB_SHA256 = 1; extmod/modhashlib.c)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    pad = bytearray(_BLOCK)
    pad[: len(key)] = key
    for i in range(_BLOCK):
        pad[i] ^= 0x36
    inner = hashlib.sha256(pad)
    inner.update(msg)
    inner = inner.digest()
    for i in range(_BLOCK):
        pad[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(pad)
    outer.update(inner)
    return outer.digest()


def greet(cl):
    """A fresh nonce for this connection, kept in its state; the greeting line."""
    nonce = binascii.hexlify(os.urandom(16))
    cl[_STATE] = nonce
    return "Auth: hmac-sha256 %s\n" % nonce.decode()


def _addr(w):
    # the peer's address without its port: a (host, port) tuple on the boards,
    # a raw sockaddr on the unix port (bytes 4..8 of sockaddr_in: the IPv4 address)
    try:
        peer = w.get_extra_info("peername")
    except (AttributeError, KeyError):
        peer = None
    if isinstance(peer, tuple):
        return peer[0]
    return bytes(peer[4:8]) if peer else b""


def _score(r, now):
    # which row to give up first: an empty one, then one whose lockout is over,
    # then the one with the fewest failures
    if r[_ADDR] is None:
        return -1
    return 0 if time.ticks_diff(r[_UNTIL], now) <= 0 else r[_FAILS]


def _row(addr, now, new=False):
    """addr's row; None, or with new=True a reused row (the table never grows)."""
    pick = None
    for r in _table:
        if r[_ADDR] == addr:
            return r
        if pick is None or _score(r, now) < _score(pick, now):
            pick = r
    if not new:
        return None
    pick[_ADDR] = addr
    pick[_FAILS] = 0
    return pick


def _same(a, b):
    # constant time: the answer's first wrong digit is not given away by timing
    d = len(a) ^ len(b)
    for x, y in zip(a, b):
        d |= x ^ y
    return d == 0


def gate(cl, line):
    """A line from a connection not yet authenticated -> the reply; None closes it."""
    global FAILS, LOCKED
    if not line.startswith("auth "):
        return "Error: auth required (answer the Auth: challenge with 'auth <hmac>', see docs/security.md)"
    addr = _addr(cl[_W])
    now = time.ticks_ms()
    r = _row(addr, now)
    wait = time.ticks_diff(r[_UNTIL], now) if r else 0
    if wait > 0:
        LOCKED += 1
        return "Error: auth locked for %d s after failed attempts" % ((wait + 999) // 1000)
    from micros import conf

    want = binascii.hexlify(hmac(conf.get("authkey").encode(), cl[_STATE]))
    if _same(line[5:].strip().encode(), want):
        cl[_STATE] = True
        if r:
            r[_ADDR] = None  # a proven key clears the address's record
        return "Authenticated"
    FAILS += 1
    r = _row(addr, now, True)
    r[_FAILS] += 1
    r[_UNTIL] = time.ticks_add(now, 1000 << min(r[_FAILS] - 1, _MAX_SHIFT))
    cl[_W].write("Error: auth failed\n")
    return None
