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
_ROWS = const(8)  # addresses with a failure on record: a fixed table, no growth per address
_MAX_SHIFT = const(8)  # lockout tops out at 2**8 s
_STATE = const(4)  # the shell's connection record: auth state, the nonce (bytes) pending,
#                    True proven (else: auth off) ...
_PEER = const(5)  # ... and the peer's address as socket.accept() gave it
_ADDR = const(0)  # a row of _tab: the address (an int, see gate) ...
_FAILS = const(1)  # ... failures in a row (0: the row is free) ...
_UNTIL = const(2)  # ... and the end of its lockout (ticks_ms)

FAILS = 0  # wrong answers since boot (system info)
LOCKED = 0  # answers refused unread during a lockout
_tab = [0] * (3 * _ROWS)  # the backoff table, made once; small ints only: no heap per row

# Two functions only: on a board each function costs RAM (its code record and object)
# even when its bytecode is frozen, so the HMAC and the table sit inside gate().


def greet(cl):
    """A fresh nonce for this connection, kept in its state; the greeting line."""
    cl[_STATE] = binascii.hexlify(os.urandom(16))
    return "Auth: hmac-sha256 %s\n" % cl[_STATE].decode()


def gate(cl, line):
    """A line from a connection not yet authenticated -> the reply; None closes it."""
    global FAILS, LOCKED
    if not line.startswith("auth "):
        return "Error: auth required (answer the Auth: challenge with 'auth <hmac>', see docs/security.md)"
    # the peer's IPv4 address as a small int (its low 30 bits: kept without allocating):
    # from socket.accept() (micros.shell.accept): a ("a.b.c.d", port)
    # tuple on the boards (lwIP), a raw sockaddr_in on the unix port
    peer = cl[_PEER]
    addr = 0
    for b in peer[0].split(".") if isinstance(peer, tuple) else peer[4:8]:
        addr = (addr << 8 | int(b)) & 0x3FFFFFFF
    now = time.ticks_ms()
    row = -1
    for i in range(0, 3 * _ROWS, 3):
        if _tab[i + _FAILS] and _tab[i + _ADDR] == addr:
            row = i
    if row >= 0 and time.ticks_diff(_tab[row + _UNTIL], now) > 0:
        LOCKED += 1
        return "Error: auth locked for %d s after failed attempts" % ((time.ticks_diff(_tab[row + _UNTIL], now) + 999) // 1000)
    # HMAC-SHA256 (RFC 2104) of the nonce on hashlib.sha256, the one hash every port has
    # (py/mpconfig.h MICROPY_PY_HASHLIB_SHA256 = 1; extmod/modhashlib.c)
    from micros import conf

    key = conf.get("authkey").encode()
    if len(key) > _BLOCK:  # authkey is 8..64 characters, but UTF-8 may make it longer
        key = hashlib.sha256(key).digest()
    pad = bytearray(_BLOCK)
    pad[: len(key)] = key
    for i in range(_BLOCK):
        pad[i] ^= 0x36
    h = hashlib.sha256(pad)
    h.update(cl[_STATE])
    key = h.digest()
    for i in range(_BLOCK):
        pad[i] ^= 0x36 ^ 0x5C
    h = hashlib.sha256(pad)
    h.update(key)
    key = binascii.hexlify(h.digest())
    got = line[5:].strip().encode()
    d = len(got) ^ len(key)  # compared in constant time: no digit is given away by timing
    for x, y in zip(got, key):
        d |= x ^ y
    if not d:
        cl[_STATE] = True
        if row >= 0:
            _tab[row + _FAILS] = 0  # a proven key clears the address's record
        return "Authenticated"
    FAILS += 1
    if row < 0:  # a row to reuse: a free one, else one whose lockout is over, else the fewest failures
        best = 1 << 20
        for i in range(0, 3 * _ROWS, 3):
            n = _tab[i + _FAILS]
            score = -1 if not n else 0 if time.ticks_diff(_tab[i + _UNTIL], now) <= 0 else n
            if score < best:
                row, best = i, score
        _tab[row + _ADDR] = addr
        _tab[row + _FAILS] = 0
    n = _tab[row + _FAILS] = _tab[row + _FAILS] + 1
    _tab[row + _UNTIL] = time.ticks_add(now, 1000 << min(n - 1, _MAX_SHIFT))
    from micros import shell

    shell.write(cl, "Error: auth failed\n")
    return None
