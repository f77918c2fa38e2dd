# Load Module: what the scheduler has armed, what it ran, what cron does next.
import sys
import time


def _sched():
    return sys.modules.get("micros.sched")  # never start it from here


def _when(t):
    # a local epoch second -> "Sat 2026-11-21 08:30:00"
    y, mo, d, h, mi, s, wd = time.gmtime(t)[:7]
    day = "MonTueWedThuFriSatSun"[wd * 3 : wd * 3 + 3]
    return "%s %d-%02d-%02d %02d:%02d:%02d" % (day, y, mo, d, h, mi, s)


def status():
    """What is armed, with run/fail counts, and the next cron firing."""
    from micros import conf

    p = sys.modules.get("micros.pled")
    out = {"pled": "builtin (gpio %d)" % p.GPIO} if p and p.GPIO >= 0 else {}
    s = _sched()
    if s is None:
        out["scheduler"] = "off (timirq, cron and extirq are False)"
        return out
    a, n = s.ARMED, s.N
    if a & 1:
        out["timirq"] = "every %d ms: %s | runs %d, fails %d, skipped %d" % (
            conf.get("timirqseq"), s.TEXT[0], n[0], n[1], n[2])
    if a & 2:
        out["cron"] = "%d tasks, next %s | runs %d, fails %d, clock jumps %d" % (
            len(s._tasks), _when(s._next), n[6], n[7], n[8])
        if time.time() < s._sane:
            out["cron"] = "held: the clock is not set (NTP runs in STA mode only) | " + out["cron"]
    if a & 4:
        out["extirq"] = "%s (gpio %d) %s, debounce %d ms: %s | edges %d, runs %d, fails %d" % (
            conf.get("extirqpin"), s.EGPIO, conf.get("extirqtrig"), conf.get("extirqprell"), s.TEXT[1],
            n[5], n[3], n[4])
    if not a:
        out["scheduler"] = "nothing armed"
    for i, note in enumerate(s.NOTES):
        out["note%02d" % (i + 1)] = note
    return out


def tasks():
    """Each cron task with its next firing and run/fail counts."""
    s = _sched()
    if s is None or not s._tasks:
        return "no cron tasks armed"
    from micros import cronrun

    out = []
    for i, c in enumerate(s._tasks):
        f = ["*" if (lo, hi) == (0, top) else str(lo) if lo == hi else "%d-%d" % (lo, hi)
             for lo, hi, top in ((c[0], c[1], 6), (c[2], c[3], 23), (c[4], c[5], 59), (c[6], c[7], 59))]
        nxt = cronrun.next_at(c, s._last + 1, s._ewd)
        out.append("%d %s!%s | next %s | runs %d, fails %d" % (
            i + 1, ":".join(f), c[8], _when(nxt), s._counts[2 * i], s._counts[2 * i + 1]))
    return out


def tick():
    """Fire the cron seconds that are due now (the 0.5 s tick does this anyway)."""
    s = _sched()
    if s is None:
        return 0
    return s.catch_up()


def now():
    """The local time cron goes by."""
    from micros import conf

    return _when(int(time.time()) + conf.get("gmttime") * 3600)


def help():
    """This module's functions, as they are called."""
    return ("status\n" "tasks\n" "tick\n" "now")
