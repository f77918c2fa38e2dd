# micrOS config store over node_config.json: typed get/set, atomic writes.
import json
import os
import sys
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


def keys():
    return [line.split(" ", 1)[0] for line in SCHEMA.split("\n") if line]


def _check(row, val):
    key, dflt, _, lo, hi = row
    if type(val) is not type(dflt):
        raise ConfError("%s takes %s" % (key, type(dflt).__name__))
    if val == dflt:  # a default is valid as it is ("n/a": an unset authkey); the shared object kept
        return dflt
    if isinstance(val, bool):
        return val
    if key == "extirqtrig" and val not in ("up", "down", "both"):
        raise ConfError("extirqtrig is up, down or both")
    n = val if isinstance(val, int) else len(val)
    if n < lo or n > hi:
        what = "" if isinstance(val, int) else " characters"
        raise ConfError("%s must be %d..%d%s" % (key, lo, hi, what))
    return "n/a" if val == "n/a" else val  # one shared string for the common placeholder


def parse(key, text):
    """Shell text -> typed value for key (raises ConfError)."""
    row = spec(key)
    dflt = row[1]
    text = text.strip()
    if isinstance(dflt, bool):
        low = text.lower()
        if low in ("true", "1", "on", "yes"):
            return True
        if low in ("false", "0", "off", "no"):
            return False
        raise ConfError("%s takes True or False" % key)
    if isinstance(dflt, int):
        try:
            return int(text)
        except ValueError:
            raise ConfError("%s takes a whole number" % key)
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def load():
    """Read node_config.json over the defaults; returns a list of notes."""
    notes = []
    _vals[:] = [_row(line)[1] for line in SCHEMA.split("\n") if line]
    try:
        os.remove(_TMP)  # a write cut short: the old file is still whole
    except OSError:
        pass
    try:
        with open(_FILE) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError
    except OSError:
        notes.append("config: no %s, using defaults" % _FILE)
        _version()
        save()
        return notes
    except (ValueError, MemoryError):
        notes.append("config: %s is corrupt, using defaults (old copy kept as %s.bad)" % (_FILE, _FILE))
        try:
            os.rename(_FILE, _FILE + ".bad")
        except OSError:
            pass
        _version()
        save()
        return notes
    for key in data:
        try:
            _vals[_index(key)] = _check(spec(key), data[key])
        except ConfError as e:
            notes.append("config: ignored %s" % e)
    _version()
    return notes


def _version():
    # read-only `version`, as the original's node_config.json had: the firmware's,
    # whatever an older file says
    from micros import VERSION

    _vals[_index("version")] = VERSION


def _index(key):
    # key's place in _vals: its line's number in SCHEMA (which starts with a newline),
    # counted in place: no table of the keys in RAM
    return SCHEMA.count("\n", 0, _find(key))


def get(key):
    i = _index(key)
    # before load() has filled _vals (it ran out of memory: safe mode), the default
    return _vals[i] if i < len(_vals) else spec(key)[1]


def set(key, val, system=False):
    """Validate and store one value, then write the file atomically."""
    global GEN
    row = spec(key)
    if row[2] & SYSTEM and not system:
        raise ConfError("%s is written by the node itself" % key)
    if isinstance(val, str):
        val = parse(key, val)
    val = _check(row, val)
    check(key, val)
    i = _index(key)
    old = _vals[i]
    _vals[i] = val
    try:
        save()
    except OSError:
        _vals[i] = old
        raise ConfError("Failed to save %s" % _FILE)
    GEN += 1
    return row[2] & REBOOT


def save():
    # written key by key: no dict of every setting at once (its table alone is ~600 B at 64-bit)
    with open(_TMP, "w") as f:
        at = 1  # the start of a line of SCHEMA: its key, up to the first space
        for v in _vals:
            f.write('%s"%s": ' % ("{" if at == 1 else ", ", SCHEMA[at : SCHEMA.find(" ", at)]))
            json.dump(v, f)
            at = SCHEMA.find("\n", at) + 1
        f.write("}")
    os.rename(_TMP, _FILE)


def shown(key):
    """The value as the shell may show it: secrets masked."""
    return "*****" if spec(key)[2] & SECRET else get(key)


def hook(key):
    """The micros module that owns key's syntax (its check(key, value) raises
    ConfError), or None. Imported only when such a key is written."""
    if key == "pinmap":
        return "pins"
    if key in ("crontasks", "timirqcbf", "extirqcbf", "boothook"):
        return "cron"
    if key == "socport":
        return "guard"
    if key in ("mqttpfx", "mqttdisc"):
        return "mqttha"
    return None


def check(key, val):
    mod = hook(key)
    if mod:
        __import__("micros." + mod)
        sys.modules["micros." + mod].check(key, val)
