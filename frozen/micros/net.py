# Network from config: STA with fallback to AP, static IP, NTP, hwuid.
# Imported for the boot, and by micros.netwatch when it reconnects.
import time
from micropython import const
from micros import conf

_STA_WAIT_MS = const(15000)


def _hex(b):
    return ":".join("%02x" % x for x in b)


def _why(network, sta):
    # the driver's last failure, for the message. Never final: the ESP32 reports
    # STAT_NO_AP_FOUND / STAT_WRONG_PASSWORD after its first failed attempt and
    # goes on retrying (esp32/network_wlan.c), so the wait runs its whole window.
    st = sta.status()
    for name in ("STAT_WRONG_PASSWORD", "STAT_NO_AP_FOUND", "STAT_CONNECT_FAIL"):
        if st == getattr(network, name, None):
            return name[5:].lower().replace("_", " ")
    return "timeout"


def _sta(network, sta):
    ssid = conf.get("staessid")
    if ssid in ("", "your_wifi_name"):
        return None
    sta.active(True)
    sta.connect(ssid, conf.get("stapwd"))
    t0 = time.ticks_ms()
    while not sta.isconnected():
        if time.ticks_diff(time.ticks_ms(), t0) > _STA_WAIT_MS:
            why = _why(network, sta)
            sta.active(False)
            print("net: no STA connection to %s (%s), falling back to AP" % (ssid, why))
            return None
        time.sleep_ms(100)
    return joined(sta)


def joined(sta):
    """The STA link is up: keep the static address; returns the IP."""
    devip = conf.get("devip")
    cfg = sta.ifconfig()
    if devip == "n/a":
        conf.set("devip", cfg[0], system=True)  # the first address becomes static
    elif devip != cfg[0]:
        sta.ifconfig((devip,) + tuple(cfg[1:]))
    return sta.ifconfig()[0]


def _ap(ap):
    ap.active(True)
    ap.config(essid=conf.get("devfid"), password=conf.get("appwd"), authmode=3)
    return ap.ifconfig()[0]


def ntp():
    try:
        import ntptime

        ntptime.settime()  # the RTC keeps UTC; gmttime is applied on reading
        return True
    except (ImportError, OSError) as e:
        print("net: NTP failed:", e)
        return False


def up():
    """Bring the network up from config; returns (mode, ip)."""
    import network

    sta = network.WLAN(network.STA_IF)
    ap = network.WLAN(network.AP_IF)
    hwuid = _hex(sta.config("mac"))
    if conf.get("hwuid") != hwuid:
        conf.set("hwuid", hwuid, system=True)
    ip = _sta(network, sta)
    mode = "STA"
    if ip is None:
        mode = "AP"
        ip = _ap(ap)
    else:
        ap.active(False)
    if conf.get("nwmd") != mode:
        conf.set("nwmd", mode, system=True)
    print("net: %s %s" % (mode, ip))
    if mode == "STA":
        ntp()
    return mode, ip
