# Cron tasks "WD:H:M:S!module function args;...": parse, check, match, next.
# Pure (only micropython.const), so the host validates profiles with it too.
# A task compiles to (wlo, whi, hlo, hhi, mlo, mhi, slo, shi, call): one range
# per field, `*` being the full range; only WD may wrap (5-1 = Sat..Tue).
# Times are local epoch seconds; `ewd` is the weekday of day 0 of the epoch
# (1970-01-01 is a Thursday = 3, MicroPython's 2000-01-01 a Saturday = 5).
import sys
from micropython import const

_DAY = const(86400)
_FIELDS = (("WD", 6), ("H", 23), ("M", 59), ("S", 59))


class CronError(ValueError):
    pass


def _num(name, top, txt):
    if not txt.isdigit():
        raise CronError("%s %r is not a number, a range a-b or *" % (name, txt))
    v = int(txt)
    if v > top:
        raise CronError("%s %d is out of range 0..%d" % (name, v, top))
    return v


def _field(name, top, txt):
    txt = txt.strip()
    if txt == "*":
        return 0, top
    if not txt:
        raise CronError("%s is empty (use * for every value)" % name)
    lo, sep, hi = txt.partition("-")
    if not sep:
        v = _num(name, top, txt)
        return v, v
    lo = lo.strip()
    hi = hi.strip()
    if not (lo.isdigit() and hi.isdigit()):
        raise CronError("%s %r is not a number, a range a-b or *" % (name, txt))
    lo = _num(name, top, lo)
    hi = _num(name, top, hi)
    if lo > hi and name != "WD":
        raise CronError("%s range %d-%d goes backwards (only WD wraps)" % (name, lo, hi))
    return lo, hi


def task(text):
    """One task "WD:H:M:S!module function args" -> compiled tuple."""
    when, sep, line = text.partition("!")
    if not sep:
        raise CronError("give WD:H:M:S!module function")
    parts = when.split(":")
    if len(parts) != 4:
        raise CronError("the time needs 4 fields WD:H:M:S, not %d" % len(parts))
    out = []
    for (name, top), txt in zip(_FIELDS, parts):
        out.extend(_field(name, top, txt))
    line = line.strip()
    if not line:
        raise CronError("no LM call after !")
    out.append(line)
    return tuple(out)


def split(text):
    """crontasks -> the non-empty task strings ("n/a" is none)."""
    if text.strip() in ("n/a", ""):
        return []
    return [t.strip() for t in text.split(";") if t.strip()]


def parse(text, resolve=None):
    """crontasks -> (tasks, errors); an error names its task. resolve(line)
    may check that the LM call exists (raises ValueError)."""
    tasks = []
    errors = []
    for i, t in enumerate(split(text)):
        try:
            c = task(t)
            if resolve:
                resolve(c[8])
            tasks.append(c)
        except ValueError as e:  # CronError and call.CallError
            errors.append("task %d %r: %s" % (i + 1, t, e))
    return tasks, errors


def _in(lo, hi, v):
    return lo <= v <= hi if lo <= hi else v >= lo or v <= hi


def match(c, t, ewd):
    """Does task c fire at local second t?"""
    sod = t % _DAY
    return (
        _in(c[0], c[1], (t // _DAY + ewd) % 7)
        and c[2] <= sod // 3600 <= c[3]
        and c[4] <= sod // 60 % 60 <= c[5]
        and c[6] <= sod % 60 <= c[7]
    )


def _up(lo, hi, v):
    # smallest value >= v in lo..hi, or -1
    return lo if v < lo else v if v <= hi else -1


def _day(c, sod):
    # earliest second of the day >= sod that matches H:M:S, or -1
    h0 = sod // 3600
    m0 = sod // 60 % 60
    s0 = sod % 60
    h = _up(c[2], c[3], h0)
    while h >= 0:
        m = _up(c[4], c[5], m0) if h == h0 else c[4]
        while m >= 0:
            s = _up(c[6], c[7], s0) if h == h0 and m == m0 else c[6]
            if s >= 0:
                return h * 3600 + m * 60 + s
            m = _up(c[4], c[5], m + 1)
        h = _up(c[2], c[3], h + 1)
    return -1


def next_at(c, t, ewd):
    """The first local second >= t at which task c fires."""
    day = t - t % _DAY
    sod = t % _DAY
    for d in range(8):
        if _in(c[0], c[1], (day // _DAY + ewd + d) % 7):
            s = _day(c, sod if d == 0 else 0)
            if s >= 0:
                return day + d * _DAY + s
    raise CronError("no firing")  # unreachable for a compiled task


def check(key, val):
    """conf hook: crontasks, and the syntax of timirqcbf/extirqcbf. On the
    device the LM calls must also resolve; the host cannot import LMs."""
    from micros import call
    from micros.conf import ConfError

    device = sys.implementation.name == "micropython"
    if key == "crontasks":
        resolve = _resolve if device else call.parse
        _, errors = parse(val, resolve)
        if errors:
            raise ConfError("crontasks: " + "; ".join(errors))
        return
    for line in split(val):
        try:
            call.parse(line)
            if device:
                _resolve(line)
        except ValueError as e:
            raise ConfError("%s: %r: %s" % (key, line, e))


def _resolve(line):
    # call.check, without keeping the modules it had to import in RAM
    from micros import call

    before = set(sys.modules)
    try:
        call.check(line)
    finally:
        call.forget(before)
