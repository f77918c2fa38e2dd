# Keeps the node on its configured network, as one asyncio task:
# - in AP fallback it retries the configured STA network with backoff and
#   switches to it (AP off) when it appears;
# - a lost STA link is waited for (the driver reconnects by itself:
#   esp32/network_wlan.c calls esp_wifi_connect() again on STA_DISCONNECTED,
#   the ESP8266 SDK's reconnect policy does the same) and connect() is issued
#   again with backoff while it stays down;
# - NTP is synced again after each (re)connection and once a day.
# A tick allocates nothing: small ints in a preallocated list, no strings
# unless something changes.
import asyncio
import time
from micropython import const
from micros import conf

_TICK_MS = const(1000)
_TRY_MS = const(10000)  # one connection attempt
_FIRST_S = const(5)  # backoff: 5, 10, 20 ... 300 s between attempts
_MAX_S = const(300)
_DAY_S = const(86400)
_NTP_RETRY_S = const(3600)  # after a failed sync
# _s: the state, small ints only
_PHASE = const(0)  # _UP, _WAIT or _TRY
_DUE = const(1)  # ticks_ms when the wait or the attempt ends
_BACKOFF = const(2)  # seconds of the next wait
_NTP_AT = const(3)  # time.time() of the last NTP sync
_NTPS = const(4)  # NTP syncs done after the boot's
_JOINS = const(5)  # STA (re)connections after boot
_LOST = const(6)  # STA links lost
_AP = const(7)  # 1 while the node serves its own access point
_UP = const(0)
_WAIT = const(1)
_TRY = const(2)
_s = [_UP, 0, _FIRST_S, 0, 0, 0, 0, 0]
_task = [None]


def _ntp(net):
    if net.ntp():
        _s[_NTP_AT] = time.time()
        _s[_NTPS] += 1
    else:
        _s[_NTP_AT] = time.time() - _DAY_S + _NTP_RETRY_S


def _net():
    # micros.net for one reconnection (joined, ntp), dropped again
    from micros import core, net

    core.drop("net")
    return net


def state():
    """For system info: where the node is on the network, and what it did."""
    s = _s
    if s[_PHASE] == _UP:
        now = "STA up"
    else:
        now = ("AP, looking for %s" if s[_AP] else "STA link down, reconnecting to %s") % conf.get("staessid")
        now += " (next try in %d s)" % max(0, time.ticks_diff(s[_DUE], time.ticks_ms()) // 1000)
    return "%s; %d reconnects, %d links lost, %d NTP resyncs" % (now, s[_JOINS], s[_LOST], s[_NTPS])


def _wait(now):
    s = _s
    s[_PHASE] = _WAIT
    s[_DUE] = time.ticks_add(now, s[_BACKOFF] * 1000)
    s[_BACKOFF] = min(s[_BACKOFF] * 2, _MAX_S)


def _up(network, sta):
    s = _s
    s[_PHASE] = _UP
    s[_BACKOFF] = _FIRST_S
    s[_JOINS] += 1
    net = _net()
    ip = net.joined(sta)
    if s[_AP]:
        s[_AP] = 0
        network.WLAN(network.AP_IF).active(False)
        conf.set("nwmd", "STA", system=True)
        print("net: %s found, STA %s (AP off)" % (conf.get("staessid"), ip))
    else:
        print("net: STA link back, %s" % ip)
    _ntp(net)


def _tick(network, sta, now):
    s = _s
    if sta.isconnected():
        if s[_PHASE] != _UP:
            _up(network, sta)
        elif abs(time.time() - s[_NTP_AT]) >= _DAY_S:
            _ntp(_net())
        return
    if s[_PHASE] == _UP:  # the link was lost; the driver retries meanwhile
        s[_LOST] += 1
        print("net: STA link to %s lost, reconnecting" % conf.get("staessid"))
        _wait(now)
    elif time.ticks_diff(now, s[_DUE]) < 0:
        return
    elif s[_PHASE] == _WAIT:  # (re)issue the connection
        s[_PHASE] = _TRY
        s[_DUE] = time.ticks_add(now, _TRY_MS)
        if not sta.active():
            sta.active(True)
        sta.connect(conf.get("staessid"), conf.get("stapwd"))
    else:  # the attempt ran out
        if s[_AP]:
            sta.active(False)  # the AP keeps its channel between attempts
        _wait(now)


async def _run(network, sta):
    while True:
        await asyncio.sleep_ms(_TICK_MS)
        try:
            _tick(network, sta, time.ticks_ms())
        except OSError as e:  # a driver refusing a call: try again later
            print("net: watch:", e)
            _wait(time.ticks_ms())


def start(mode):
    """After net.up(): mode "STA" or "AP" (the fallback), with a STA network set."""
    if _task[0]:
        return
    import network

    sta = network.WLAN(network.STA_IF)
    _s[_NTP_AT] = time.time()  # the boot synced (or tried) in STA mode; in AP: on joining
    if mode == "AP":
        _s[_AP] = 1
        _wait(time.ticks_ms())
        print("net: AP fallback, retrying %s in the background" % conf.get("staessid"))
    _task[0] = asyncio.create_task(_run(network, sta))
