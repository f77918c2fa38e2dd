# Cron matching: does a compiled task (micros.cron) fire at a second, and when next.
# What a running scheduler keeps of cron (micros.sched); pure, as micros.cron.
# Times are local epoch seconds; `ewd` is the weekday of day 0 of the epoch
# (1970-01-01 is a Thursday = 3, MicroPython's 2000-01-01 a Saturday = 5).
from micropython import const

_DAY = const(86400)


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
    raise ValueError("no firing")  # unreachable for a compiled task
