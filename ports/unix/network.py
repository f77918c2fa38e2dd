# Virtual board: WLAN station and access point. MICROS_SIM_WIFI lists the
# networks in reach as "ssid:password[,ssid:password]"; unset, any SSID but
# the default placeholder connects.
import os

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_WRONG_PASSWORD = 202
STAT_NO_AP_FOUND = 201
STAT_GOT_IP = 1010
_ifs = {}


def _mac(kind):
    seed = os.getenv("MICROS_SIM_NODE") or "sim"
    h = 0
    for ch in seed:
        h = (h * 31 + ord(ch)) & 0xFFFFFF
    return bytes((0x02, 0x00, kind, h >> 16, (h >> 8) & 0xFF, h & 0xFF))


class WLAN:
    def __new__(cls, kind=STA_IF):
        w = _ifs.get(kind)
        if w is None:
            w = object.__new__(cls)
            w._kind = kind
            w._active = False
            w._conn = False
            w._cfg = {"mac": _mac(kind), "essid": "", "password": "", "authmode": 0}
            w._ip = ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1") if kind == STA_IF else (
                "192.168.4.1", "255.255.255.0", "192.168.4.1", "192.168.4.1")
            _ifs[kind] = w
        return w

    def __init__(self, kind=STA_IF):
        pass

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._conn = False

    def connect(self, ssid, key=None):
        if not self._active:
            raise OSError("STA is not active")
        nets = os.getenv("MICROS_SIM_WIFI")
        if nets:
            known = dict(n.split(":", 1) for n in nets.split(","))
        else:
            known = {ssid: key} if ssid != "your_wifi_name" else {}
        self._conn = known.get(ssid, None) == key
        self._status = STAT_GOT_IP if self._conn else STAT_WRONG_PASSWORD if ssid in known else STAT_NO_AP_FOUND
        self._cfg["essid"] = ssid

    def disconnect(self):
        self._conn = False

    def isconnected(self):
        return self._conn if self._kind == STA_IF else self._active

    def ifconfig(self, cfg=None):
        if cfg is None:
            return self._ip
        self._ip = tuple(cfg)

    def config(self, *args, **kw):
        if args:
            return self._cfg[args[0]]
        self._cfg.update(kw)

    def status(self, what=None):
        if what == "rssi":
            return -55 if self._conn else 0
        return getattr(self, "_status", STAT_IDLE)
