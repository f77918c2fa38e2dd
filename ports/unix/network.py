# Virtual board: WLAN station and access point. MICROS_SIM_WIFI lists the
# networks in reach as "ssid:password[@ms][,...]" (@ms: the AP comes in reach
# that long after the node starts (time._boot), as a router that boots slower
# than the node); unset, any SSID but the default placeholder connects. A test
# changes what is in reach at runtime with `sim wifi` (ports/unix/LM_sim.py):
# a connected STA whose network vanishes loses its link, and the driver keeps
# retrying until it is back, as esp32/network_wlan.c does (its STA_DISCONNECTED
# handler calls esp_wifi_connect() again while connect was requested).
# MICROS_SIM_IP is the station's address (the one the shell binds, see
# simboot.py), 127.0.0.1 when unset; MICROS_SIM_DNS its DNS server (ifconfig()[3]).
import os
import time
import chip

STA_IF = 0
AP_IF = 1
if chip.PLATFORM == "esp8266":  # esp8266/modnetwork_globals.h: the SDK's STATION_* values
    STAT_IDLE, STAT_CONNECTING, STAT_WRONG_PASSWORD, STAT_NO_AP_FOUND, STAT_GOT_IP = 0, 1, 2, 3, 5
    STAT_CONNECT_FAIL = 4
else:  # esp32/modnetwork.h and modnetwork_globals.h (WIFI_REASON_* of the IDF)
    STAT_IDLE, STAT_CONNECTING, STAT_GOT_IP = 1000, 1001, 1010
    STAT_NO_AP_FOUND, STAT_WRONG_PASSWORD = 201, 202
_ATTEMPT_MS = 300  # one association attempt of an impersonated chip
_ifs = {}
AIR = None  # set by `sim wifi`: replaces MICROS_SIM_WIFI ("" = nothing in reach)


def _nets():
    # {ssid: (password, ms until in reach)}
    nets = os.getenv("MICROS_SIM_WIFI") if AIR is None else AIR
    out = {}
    for n in nets.split(",") if nets else ():
        ssid, _, rest = n.partition(":")
        key, _, at = rest.rpartition("@") if "@" in rest else (rest, "", "0")
        out[ssid] = (key, int(at))
    return out


def _dns():
    # the station's DNS server, as DHCP gives a board its LAN's: the host's, which
    # microsctl/node/sim.py passes in MICROS_SIM_DNS (read here: no file, no heap)
    return os.getenv("MICROS_SIM_DNS") or "127.0.0.1"


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
            w._ip = (os.getenv("MICROS_SIM_IP") or "127.0.0.1", "255.0.0.0", "127.0.0.1", _dns()) if kind == STA_IF else (
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
            self._net = None

    def connect(self, ssid, key=None):
        if not self._active:
            raise OSError("STA is not active")
        self._net = (ssid, key, time.ticks_ms())
        self._cfg["essid"] = ssid
        self._conn = False
        self._status = STAT_CONNECTING
        self._poll()  # the plain sim: the answer is there at once

    def _poll(self):
        # An impersonated chip keeps retrying after a failed attempt and reports the
        # last failure meanwhile (esp32/network_wlan.c: the STA_DISCONNECTED handler
        # calls esp_wifi_connect() again; status() returns WIFI_REASON_NO_AP_FOUND
        # or AUTH_FAIL until connected); the ESP8266 SDK reconnects the same way.
        # A connected STA whose network left reach loses its link and retries.
        if self._kind != STA_IF or not getattr(self, "_net", None):
            return
        ssid, key, t0 = self._net
        if AIR is None and not os.getenv("MICROS_SIM_WIFI"):  # any SSID but the placeholder
            net = (key, 0) if ssid != "your_wifi_name" else None
        else:
            net = _nets().get(ssid)  # (password, ms from boot until in reach) or None
        here = net is not None and time.ticks_diff(time.ticks_ms(), time._boot) >= net[1]
        if self._conn:
            if not here or net[0] != key:  # beacon timeout: the driver retries
                self._conn = False
                self._status = STAT_NO_AP_FOUND
                self._net = (ssid, key, time.ticks_ms())
            return
        el = time.ticks_diff(time.ticks_ms(), t0)
        if chip.NAME and el < _ATTEMPT_MS:
            self._status = STAT_CONNECTING
        elif not here:
            self._status = STAT_NO_AP_FOUND
        elif net[0] != key:
            self._status = STAT_WRONG_PASSWORD
        else:
            self._conn = True
            self._status = STAT_GOT_IP

    def scan(self):
        # esp32/network_wlan.c network_wlan_scan, esp8266/network_wlan.c esp_scan: one tuple per access
        # point in reach, (ssid, bssid, channel, RSSI, authmode, hidden). In reach: the networks
        # of MICROS_SIM_WIFI (or `sim wifi`) whose time has come; with no list (any SSID
        # connects) nothing can be named: an empty list.
        if self._kind != STA_IF or not self._active:
            raise OSError("STA must be active")  # both ports refuse a scan otherwise
        t = time.ticks_diff(time.ticks_ms(), time._boot)
        return [(s.encode(), _mac(2), 1, -55, 3 if k else 0, False) for s, (k, at) in _nets().items() if t >= at]

    def disconnect(self):
        self._conn = False
        self._net = None
        self._status = STAT_IDLE

    def isconnected(self):
        self._poll()
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
        self._poll()
        return getattr(self, "_status", STAT_IDLE)
