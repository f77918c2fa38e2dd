# The config store's cold half: loading node_config.json at boot, checking and
# writing a value, what the shell shows of a setting. micros.conf imports this
# module for a load or a write and drops it at once, so a running node keeps
# only conf.get's half (the schema, the values, the lookup) between writes.
import json
import os
import sys
from micros import conf
from micros.conf import ConfError, SECRET, SYSTEM, SCHEMA, spec


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
    vals = conf._vals
    vals[:] = [conf._row(line)[1] for line in SCHEMA.split("\n") if line]
    try:
        os.remove(conf._TMP)  # a write cut short: the old file is still whole
    except OSError:
        pass
    try:
        with open(conf._FILE) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            raise ValueError
    except OSError:
        notes.append("config: no %s, using defaults" % conf._FILE)
        _version()
        save()
        return notes
    except (ValueError, MemoryError):
        notes.append("config: %s is corrupt, using defaults (old copy kept as %s.bad)" % (conf._FILE, conf._FILE))
        try:
            os.rename(conf._FILE, conf._FILE + ".bad")
        except OSError:
            pass
        _version()
        save()
        return notes
    for key in data:
        try:
            vals[conf._index(key)] = _check(spec(key), data[key])
        except ConfError as e:
            notes.append("config: ignored %s" % e)
    _version()
    return notes


def _version():
    # read-only `version`, as the original's node_config.json had: the firmware's,
    # whatever an older file says
    from micros import VERSION

    conf._vals[conf._index("version")] = VERSION


def set(key, val, system=False):
    """Validate and store one value, then write the file atomically."""
    row = spec(key)
    if row[2] & SYSTEM and not system:
        raise ConfError("%s is written by the node itself" % key)
    if isinstance(val, str):
        val = parse(key, val)
    val = _check(row, val)
    check(key, val)
    i = conf._index(key)
    old = conf._vals[i]
    conf._vals[i] = val
    try:
        save()
    except OSError:
        conf._vals[i] = old
        raise ConfError("Failed to save %s" % conf._FILE)
    conf.GEN += 1
    return row[2] & conf.REBOOT


def save():
    # written key by key: no dict of every setting at once (its table alone is ~600 B at 64-bit)
    with open(conf._TMP, "w") as f:
        at = 1  # the start of a line of SCHEMA: its key, up to the first space
        for v in conf._vals:
            f.write('%s"%s": ' % ("{" if at == 1 else ", ", SCHEMA[at : SCHEMA.find(" ", at)]))
            json.dump(v, f)
            at = SCHEMA.find("\n", at) + 1
        f.write("}")
    os.rename(conf._TMP, conf._FILE)


def shown(key):
    """The value as the shell may show it: secrets masked."""
    return "*****" if spec(key)[2] & SECRET else conf.get(key)


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
