# State caches of the Load Modules (light/dimmer/switch/neopixel
# *_cache_load_n_init): kept in the config store under the node-written key
# `lmcache` ("name:v,v,...;name:v,..."), so a write goes through conf.set: one
# temp file, then a rename (no ad-hoc state files, nothing half-written).
import sys


def enabled(cache):
    # the original's default: persistent on ESP32, off on the ESP8266 (flash wear)
    return sys.platform != "esp8266" if cache is None else bool(cache)


def load(name):
    """The cached ints of LM `name`, or None."""
    from micros import conf

    for item in conf.get("lmcache").split(";"):
        k, _, v = item.partition(":")
        if k == name and v:
            try:
                return [int(x) for x in v.split(",")]
            except ValueError:
                return None
    return None


def save(name, vals):
    """Store the ints of LM `name` (no write when they did not change)."""
    from micros import conf

    mine = name + ":" + ",".join(str(int(x)) for x in vals)
    items = [i for i in conf.get("lmcache").split(";") if i and i != "n/a" and i.partition(":")[0] != name]
    if mine in conf.get("lmcache").split(";"):
        return
    items.append(mine)
    conf.set("lmcache", ";".join(items), system=True)
