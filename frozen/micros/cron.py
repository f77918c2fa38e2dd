# Cron tasks "WD:H:M:S!module function args;...": parse and check. Matching and
# the next firing are in micros.cronrun, the part a running scheduler keeps:
# micros.sched imports this module to compile crontasks at start, then drops it.
# Pure (only micros.cronrun), so the host validates profiles with it too.
# A task compiles to (wlo, whi, hlo, hhi, mlo, mhi, slo, shi, call): one range
# per field, `*` being the full range; only WD may wrap (5-1 = Sat..Tue).
import sys

from micros.cronrun import match, next_at  # noqa: F401 (the whole cron API, for the host and tests)

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
