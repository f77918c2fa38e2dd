# Virtual board: `socket` as the impersonated chip's lwIP limits it. chip.py
# installs this module as sys.modules["socket"] when a chip is impersonated (the
# plain sim keeps the unix port's socket); the rest of `socket` is the built-in.
# What is counted: the sockets the node holds open (closed ones, fileno() -1, drop
# out); a socket dropped without close() keeps its place here, where on the chip
# its finaliser frees it at the next GC. Not modelled: connections the node has
# closed but whose peer has not (FIN_WAIT), which lwIP still counts for a while.
#
# ESP32, C3, S3 (ports/esp32/modsocket.c over ESP-IDF v5.5.1's lwIP, the IDF that
# ports/esp32/README.md and .github/workflows/ports_esp32.yml name for v1.28.0):
#  - sockets: CONFIG_LWIP_MAX_SOCKETS, default 10 in components/lwip/Kconfig (v5.3
#    to v5.5.1), not set by ports/esp32/boards/sdkconfig.base (only sdkconfig.free_ram,
#    for the C2/C5, sets 6). Every socket takes one: listening, connected, UDP.
#  - socket() when all are taken: esp-lwip src/api/sockets.c lwip_socket():
#    alloc_socket() == -1 -> ENFILE; modsocket.c socket_make_new() runs gc_collect()
#    and tries once more, then raises OSError(ENFILE).
#  - accept() when all are taken: sockets.c lwip_accept(): the connection lwIP has
#    already accepted is deleted (netconn_delete: closed to the peer, reset if it
#    had sent data) and OSError(ENFILE) is raised.
#  - TCP PCBs: ports/esp32/lwip_patch.c caps them at MEMP_NUM_TCP_PCB =
#    CONFIG_LWIP_MAX_ACTIVE_TCP (12, sdkconfig.base); with each counted TCP
#    connection also holding a socket (10), sockets run out first.
# ESP8266 (ports/esp8266 links esp-open-lwip, lwIP 1.4 on the raw API, extmod/modlwip.c):
#  - no socket table: socket() and connect() are not limited (tcp_connect() checks
#    no count), listening PCBs have their own list.
#  - esp-open-lwip lwip/core/tcp_in.c tcp_listen_input(): a SYN is dropped (no
#    answer: the peer's TCP retries it) when the active PCBs (every connection
#    that is neither listening nor in TIME_WAIT, outgoing ones too) number exactly
#    MEMP_NUM_TCP_PCB (`==`, lwipopts.h: the SDK register, 5). The host's kernel
#    has completed the handshake before the node sees it, so here the connection is
#    reset before a byte is sent, and accept() finds nothing (EAGAIN).
import io
import sys
import chip

_p = sys.path
sys.path = []
import socket as _s

sys.path = _p
del _p

_ENFILE = 23  # newlib's errno, as lwIP sets it on the ESP32
_EAGAIN = 11
_live = []  # [builtin socket, counted as an active TCP connection]


def __getattr__(name):  # the rest of the module: the unix port's socket
    return getattr(_s, name)


def _count(tcp):
    n = 0
    for k in _live[:]:
        if k[0].fileno() < 0:
            _live.remove(k)
        elif k[1] or not tcp:
            n += 1
    return n


def _full():
    if chip.SOCKETS:
        return _count(0) >= chip.SOCKETS
    return _count(1) == chip.TCP  # tcp_in.c: active_pcb_num == MEMP_NUM_TCP_PCB


class socket(io.IOBase):
    def __init__(self, af=_s.AF_INET, kind=_s.SOCK_STREAM, proto=0):
        if chip.SOCKETS and _full():
            import gc

            gc.collect()  # modsocket.c: gc_collect(), then lwip_socket() once more
            if _full():
                raise OSError(_ENFILE)
        self.s = _s.socket(af, kind, proto)
        self.k = [self.s, 0]
        self.tcp = kind == _s.SOCK_STREAM
        _live.append(self.k)

    def ioctl(self, req, arg):
        # select.poll / asyncio wait on the real descriptor (MP_STREAM_GET_FILENO)
        return self.s.fileno() if req == 10 else 0

    def connect(self, addr):
        self.k[1] = self.tcp  # an active PCB from the SYN on (tcp_connect registers it)
        return self.s.connect(addr)

    def accept(self):
        s2, addr = self.s.accept()
        if _full():
            if chip.SOCKETS:  # sockets.c lwip_accept: netconn_delete(newconn), ENFILE
                s2.close()
                raise OSError(_ENFILE)
            # tcp_in.c: the SYN is dropped; the nearest on a host: a reset, no byte sent
            s2.setsockopt(_s.SOL_SOCKET, 13, b"\1\0\0\0\0\0\0\0")  # SO_LINGER {1, 0}
            s2.close()
            raise OSError(_EAGAIN)
        _live.append([s2, 1])
        return s2, addr

    def close(self):
        self.s.close()

    def fileno(self):
        return self.s.fileno()

    def __getattr__(self, name):  # bind, listen, setblocking, recv, send, readinto, ...
        return getattr(self.s, name)


sys.modules["socket"] = sys.modules[__name__]
