# micrOS config store over node_config.json: typed get/set, atomic writes.
# What a running node keeps is the reading half (the schema, the values, get);
# loading the file and writing a value are in micros.confw, imported for that
# and dropped at once.
from micropython import const

_FILE = "node_config.json"
_TMP = "node_config.json.tmp"

# Flag bits of a parameter.
REBOOT = const(1)  # takes effect after a reboot
SECRET = const(2)  # never shown in dump or logs
SYSTEM = const(4)  # written by the node itself; refused from the shell

# The one definition of every parameter, one per line:
#   key type default flags lo hi
# type: s str, i int, b bool; flags: sum of the bits above; lo/hi: int range,
# or str length range. A string, not a table of tuples: in frozen bytecode or
# ROMFS it stays in flash and costs no heap. The host reads it through spec().
SCHEMA = """
staessid s your_wifi_name 1 0 32
stapwd s your_wifi_passwd 3 0 64
devfid s node01 0 1 32
appwd s ADmin123 3 8 64
auth b True 0 0 1
authkey s n/a 2 8 64
pled b True 1 0 1
dbg b True 1 0 1
soctout i 100 1 1 3600
socport i 9008 1 1 65535
timirq b False 1 0 1
timirqcbf s n/a 1 0 512
cron b False 1 0 1
crontasks s n/a 1 0 1024
timirqseq i 3000 1 10 86400000
extirq b False 1 0 1
extirqcbf s n/a 1 0 512
extirqpin s pwm_4 1 1 16
extirqtrig s up 1 2 4
extirqprell i 300 1 0 60000
boothook s n/a 1 0 512
irqmembuf i 1000 1 0 8192
gmttime i 1 1 -12 14
nwmd s n/a 4 0 8
hwuid s n/a 4 0 32
devip s n/a 1 0 15
boostmd b True 1 0 1
pinmap s n/a 1 0 256
version s n/a 4 0 16
lmcache s n/a 4 0 256
mqtt b False 1 0 1
mqtthost s n/a 1 0 64
mqttport i 1883 1 1 65535
mqttuser s n/a 1 0 64
mqttpwd s n/a 3 0 64
mqttpfx s micros 1 1 32
mqttper i 60 1 1 86400
mqttka i 60 1 2 3600
mqttdisc s homeassistant 1 0 32
mqtttls b False 1 0 1
mqttca s n/a 1 0 64
"""

_vals = []  # the values, in SCHEMA order: a list costs far less than a dict
GEN = 0  # counts writes, so readers can cache what they derive from a value


class ConfError(ValueError):
    pass


def _row(line):
    k, t, d, f, lo, hi = line.split()
    d = d == "True" if t == "b" else int(d) if t == "i" else "n/a" if d == "n/a" else d
    return k, d, int(f), int(lo), int(hi)


def _find(key):
    # position of key's line in SCHEMA (at its leading newline)
    i = SCHEMA.find("\n%s " % key) if key and " " not in key and "\n" not in key else -1
    if i < 0:
        raise ConfError("Invalid key: %s (dump lists the keys)" % key)
    return i


def spec(key):
    """(key, default, flags, lo, hi) of one parameter."""
    i = _find(key)
    return _row(SCHEMA[i + 1 : SCHEMA.find("\n", i + 1)])


def _index(key):
    # key's place in _vals: its line's number in SCHEMA (which starts with a newline),
    # counted in place: no table of the keys in RAM
    return SCHEMA.count("\n", 0, _find(key))


def get(key):
    i = _index(key)
    # before load() has filled _vals (it ran out of memory: safe mode), the default
    return _vals[i] if i < len(_vals) else spec(key)[1]


def load():
    """Read node_config.json over the defaults; returns a list of notes."""
    return _w("load")()


def set(key, val, system=False):
    """Validate and store one value, then write the file atomically; true when it takes
    a reboot to take effect."""
    return _w("set")(key, val, system)


def _w(name):
    # a function of micros.confw, the module dropped before it runs (the function keeps it)
    from micros import call, confw

    call.unload("micros.confw")
    return getattr(confw, name)
