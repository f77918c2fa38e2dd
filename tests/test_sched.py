"""The scheduler on real MicroPython nodes: cron second by second over a held
clock, NTP steps, the timer period, external IRQs with debounce, failing and slow
callbacks, the heartbeat LED, and bad schedules at boot and in conf mode."""
import collections
import datetime
import json
import re
import time

import pytest

from microsctl.node.client import Shell
from microsctl.node.sim import write_config

from .test_sched_cron import MALFORMED

# Records each call: "tag cron-second ticks_ms" per line in rec.log on the node.
LM_REC = '''
import time

_n = [0]


def hit(tag):
    from micros import sched

    with open("rec.log", "a") as f:
        f.write("%s %d %d\\n" % (tag, sched.firing(), time.ticks_ms()))


def boom():
    raise ValueError("boom on purpose")


def mods():
    import sys

    return " ".join(sorted(sys.modules))


def slow_once(ms):
    hit("S")
    _n[0] += 1
    if _n[0] == 1:
        time.sleep_ms(ms)
'''

T0 = 1794787200 - 2 * 3600 - 1800  # Sun 2026-11-15 23:30:00 local at gmttime +2 (a Monday starts in 30 min)
GMT = 2


@pytest.fixture
def held(monkeypatch):
    monkeypatch.setenv("MICROS_SIM_CLOCK", str(T0))


def boot(make_node, sets, bad=None, **kw):
    """A node with LM_rec on its filesystem; `bad` settings go into node_config.json
    unchecked, as a hand-edited file would."""
    n = make_node(sets=sets, start=False, **kw)
    (n.fs / "LM_rec.py").write_text(LM_REC)
    if bad:
        cfg = n.config()
        cfg.update(bad)
        write_config(n.config_path, cfg)
    n.start()
    return n


def records(n, tag=None):
    p = n.fs / "rec.log"
    rows = [ln.split() for ln in p.read_text().splitlines()] if p.exists() else []
    return [(r[0], int(r[1]), int(r[2])) for r in rows if tag is None or r[0] == tag]


def status(sh):
    return dict(ln.split(": ", 1) for ln in sh.cmd("sched status").splitlines())


def counts(text, *names):
    return [int(re.search(r"\b%s (\d+)" % name, text).group(1)) for name in names]


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


# -- cron over a simulated week --
WEEK_TASKS = {
    "A": "*:8:30:0",  # every day at a fixed time
    "F": "*:8:30:0",  # a second task at the very same second
    "B": "5-1:12:0:0",  # weekday range wrapping over the week end (Sat..Tue)
    "C": "2:*:0:0",  # Wednesday, every hour
    "D": "*:*:15-16:30",  # ranges, every hour
    "E": "4:23:59:58-59",  # Friday's last two seconds
    "G": "6:3:0-1:*",  # Sunday 03:00:00 .. 03:01:59, every second
    "H": "0-6:0:0:0",  # every midnight
}


def expected(tasks, start, end):
    """(tag, utc second) for every local second in (start, end], computed from datetime."""
    out = []
    for tag, spec in tasks.items():
        sets = []
        for f, top in zip(spec.split(":"), (6, 23, 59, 59)):
            if f == "*":
                sets.append(set(range(top + 1)))
            else:
                lo, _, hi = f.partition("-")
                lo, hi = int(lo), int(hi or lo)
                sets.append(set(range(lo, hi + 1)) if lo <= hi else set(range(lo, top + 1)) | set(range(hi + 1)))
        day = (start + GMT * 3600) // 86400 * 86400 - GMT * 3600
        while day <= end:
            local = datetime.datetime.fromtimestamp(day + GMT * 3600, datetime.timezone.utc)
            if local.weekday() in sets[0]:
                for h in sets[1]:
                    for m in sets[2]:
                        for s in sets[3]:
                            t = day + h * 3600 + m * 60 + s
                            if start < t <= end:
                                out.append((tag, t))
            day += 86400
    return collections.Counter(out)


def test_cron_week_fires_every_matching_second_exactly_once(make_node, held):
    crontasks = ";".join("%s!rec hit %s" % (spec, tag) for tag, spec in WEEK_TASKS.items())
    n = boot(make_node, ["timirq=True", "cron=True", "gmttime=%d" % GMT, "crontasks=" + crontasks, "pled=False"])
    # uneven steps, from a second to the catch-up cap of an hour, summing to a week
    steps = [1, 59, 3600, 1234, 7, 3599, 60, 86, 3000, 1]
    total, seq = 0, []
    while total < 7 * 86400:
        s = min(steps[len(seq) % len(steps)], 7 * 86400 - total)
        seq.append(s)
        total += s
    with Shell(n.port) as sh:
        assert sh.cmd("sched now") == "Sun 2026-11-15 23:30:00"
        for s in seq:
            sh.cmd("sim step_clock %d" % s)
            sh.cmd("sched tick")
        assert int(sh.cmd("sim clock")) == T0 + 7 * 86400
        st = status(sh)
    got = collections.Counter((tag, sec) for tag, sec, _ in records(n))
    want = expected(WEEK_TASKS, T0, T0 + 7 * 86400)
    assert sum(want.values()) == 7 + 7 + 4 + 24 + 336 + 2 + 120 + 7
    assert got == want
    assert counts(st["cron"], "runs", "fails", "jumps") == [sum(want.values()), 0, 0]


def test_ntp_steps_forward_and_back(make_node, held):
    n = boot(make_node, ["timirq=True", "cron=True", "gmttime=0", "pled=False",
                         "crontasks=*:*:*:*!rec hit X;*:*:*:0!rec hit M"])
    with Shell(n.port) as sh:
        sh.cmd("sim step_clock 100")  # NTP steps forward: the 100 seconds are caught up
        assert sh.cmd("sched tick") == "100"
        sh.cmd("sim step_clock -50")  # back: nothing fires again
        assert sh.cmd("sched tick") == "0"
        sh.cmd("sim step_clock 60")  # past the old time: only the new seconds
        assert sh.cmd("sched tick") == "10"
        sh.cmd("sim step_clock 5")  # the scheduler's own tick, late by up to half a second
        wait_for(lambda: len(records(n, "X")) == 115)
        sh.cmd("sim step_clock 3601")  # beyond the cap: a new clock, no flood of firings
        assert sh.cmd("sched tick") == "0"
        sh.cmd("sim step_clock 3")
        assert sh.cmd("sched tick") == "3"
        sh.cmd("sim step_clock -7200")  # far back: cron goes on from the new time
        assert sh.cmd("sched tick") == "0"
        sh.cmd("sim step_clock 2")
        assert sh.cmd("sched tick") == "2"
        st = status(sh)
    xs = [sec for _, sec, _ in records(n, "X")]
    assert xs == (list(range(T0 + 1, T0 + 116)) + [T0 + 3716 + i for i in (1, 2, 3)]
                  + [T0 + 3719 - 7200 + i for i in (1, 2)])
    ms = [sec for _, sec, _ in records(n, "M")]
    assert ms == [t for t in xs if t % 60 == 0]
    assert counts(st["cron"], "runs", "fails", "jumps") == [len(xs) + len(ms), 0, 2]


def test_cron_needs_timirq(make_node):
    n = boot(make_node, ["cron=True", "crontasks=*:*:*:*!rec hit X"])
    with Shell(n.port) as sh:
        st = status(sh)
    assert "cron" not in st
    assert st["note01"] == "cron is on but needs timirq True as well: cron not armed"
    assert "sched: cron is on but needs timirq True" in n.log.read_text()


# -- timer --
def test_timer_period_holds_over_many_periods(make_node):
    n = boot(make_node, ["timirq=True", "timirqseq=100", "timirqcbf=rec hit T", "pled=False"])
    time.sleep(2.2)
    ts = [tk for _, _, tk in records(n, "T")]
    assert len(ts) >= 15
    # drift-free: each run sits on the 100 ms grid started by the first one
    offs = [(t - ts[0]) - round((t - ts[0]) / 100) * 100 for t in ts]
    assert sorted(abs(o) for o in offs)[len(offs) * 9 // 10] <= 25
    k = [round((t - ts[0]) / 100) for t in ts]
    assert k == sorted(set(k))  # one run per period at most
    span = (ts[-1] - ts[0]) / k[-1]
    assert 97 <= span <= 103
    with Shell(n.port) as sh:
        runs, fails, skipped = counts(status(sh)["timirq"], "runs", "fails", "skipped")
    assert fails == 0 and runs + skipped >= k[-1]


def test_raising_callback_is_counted_and_scheduler_goes_on(make_node, held):
    n = boot(make_node, ["timirq=True", "timirqseq=50", "timirqcbf=rec boom;rec hit T", "pled=False",
                         "cron=True", "crontasks=*:*:*:*!rec boom;*:*:*:*!rec hit C"])
    wait_for(lambda: len(records(n, "T")) >= 5)
    with Shell(n.port) as sh:
        sh.cmd("sim step_clock 3")
        assert sh.cmd("sched tick") == "3"
        st = status(sh)
        assert sh.cmd("hello").startswith("hello:")
    runs, fails = counts(st["timirq"], "runs", "fails")
    assert runs >= 5 and fails == runs  # every run raised, and every run happened
    assert len(records(n, "T")) >= 5  # the call after the raising one still ran
    assert counts(st["cron"], "runs", "fails") == [6, 3]
    assert [sec for _, sec, _ in records(n, "C")] == [T0 + 1, T0 + 2, T0 + 3]
    assert "sched: timirq: rec boom: boom on purpose" in n.log.read_text()
    assert "sched: cron: rec boom: boom on purpose" in n.log.read_text()


def test_slow_callback_is_not_stacked(make_node):
    n = boot(make_node, ["timirq=True", "timirqseq=100", "timirqcbf=rec slow_once 700", "pled=False"])
    wait_for(lambda: len(records(n, "S")) >= 8)
    ts = [tk for _, _, tk in records(n, "S")]
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    assert gaps[0] >= 700  # the slow run
    assert min(gaps[1:]) >= 50  # no burst of queued runs after it
    with Shell(n.port) as sh:
        (skipped,) = counts(status(sh)["timirq"], "skipped")
    assert skipped >= 5


# -- external IRQ --
def burst(sh, n):
    """n pulses on pwm_4, as fast as the shell takes them: a bouncing contact."""
    for _ in range(n):
        sh.cmd("sim edge pwm_4 1")
        sh.cmd("sim edge pwm_4 0")


def test_debounce_turns_a_burst_into_one_callback(make_node):
    n = boot(make_node, ["extirq=True", "extirqcbf=rec hit E", "extirqprell=400", "extirqtrig=up"])
    with Shell(n.port) as sh:
        burst(sh, 6)
        wait_for(lambda: records(n, "E"))
        burst(sh, 3)  # still bouncing within the debounce time
        time.sleep(0.6)
        assert len(records(n, "E")) == 1
        burst(sh, 4)  # a new press
        wait_for(lambda: len(records(n, "E")) == 2)
        time.sleep(0.2)
        st = status(sh)
    assert counts(st["extirq"], "edges", "runs", "fails") == [13, 2, 0]
    assert st["extirq"].startswith("pwm_4 (gpio 4) up, debounce 400 ms: rec hit E")


@pytest.mark.parametrize("trig, fired", [("up", 2), ("down", 1), ("both", 3)])
def test_trigger_edges(make_node, trig, fired):
    n = boot(make_node, ["extirq=True", "extirqcbf=rec hit E", "extirqprell=0", "extirqtrig=" + trig])
    with Shell(n.port) as sh:
        for level in (1, 0, 1):  # up, down, up: one edge at a time
            sh.cmd("sim edge pwm_4 %d" % level)
            time.sleep(0.1)
        wait_for(lambda: len(records(n, "E")) >= fired)
        time.sleep(0.1)
    assert len(records(n, "E")) == fired


# -- heartbeat, and nothing loaded when all is off --
def test_pled_heartbeat_on_builtin(make_node):
    n = boot(make_node, [])
    with Shell(n.port) as sh:
        mods = sh.cmd("rec mods").split()
        assert "micros.pled" in mods and "micros.sched" not in mods
        assert status(sh) == {"pled": "builtin (gpio 2)", "scheduler": "off (timirq, cron and extirq are False)"}
        before = json.loads(sh.cmd("sim pins >json"))["flips"].get("2", 0)
        time.sleep(1.2)
        after = json.loads(sh.cmd("sim pins >json"))["flips"].get("2", 0)
    assert after - before >= 2  # on and off at least once


def test_scheduling_off_imports_nothing(make_node):
    n = boot(make_node, ["pled=False"])
    with Shell(n.port) as sh:
        mods = sh.cmd("rec mods").split()
        assert not {"micros.pled", "micros.sched", "micros.cron", "micros.cronrun", "micros.pins"} & set(mods)
        assert status(sh) == {"scheduler": "off (timirq, cron and extirq are False)"}
        assert json.loads(sh.cmd("sim pins >json")) == {"pins": {}, "pwm": {}, "flips": {}}
        assert sh.cmd("sched tasks") == "no cron tasks armed"


# -- bad schedules: at boot, and in conf mode --
BAD_BOOT = {
    "crontasks": "*:8:30:0!rec hit A;*:24:0:0!rec hit B;1-2-3:0:0:0!rec hit C;*:*:*:*!nosuch x;"
                 "*:*:*:*!rec nofunc;*:*:*:*;7:0:0:0!rec hit D;*:*:*:*!rec hit(",
    "timirqcbf": "rec hit T;gpio nosuch",
    "extirqcbf": "nosuch call",
}


def test_bad_schedules_reported_at_boot_node_runs(make_node, held):
    n = boot(make_node, ["timirq=True", "timirqseq=1000", "cron=True", "extirq=True", "pled=False"], bad=BAD_BOOT)
    with Shell(n.port) as sh:
        st = status(sh)
        assert sh.cmd("sched tasks").startswith("1 *:8:30:0!rec hit A | next Mon 2026-11-16 08:30:00 | runs 0")
    notes = [v for k, v in sorted(st.items()) if k.startswith("note")]
    assert notes == [
        "timirqcbf: 'gpio nosuch' refused: gpio has no function nosuch (help lists them)",
        "crontasks: task 2 '*:24:0:0!rec hit B': H 24 is out of range 0..23: not armed",
        "crontasks: task 3 '1-2-3:0:0:0!rec hit C': WD '1-2-3' is not a number, a range a-b or *: not armed",
        "crontasks: task 4 '*:*:*:*!nosuch x': unknown module nosuch (help lists them): not armed",
        "crontasks: task 5 '*:*:*:*!rec nofunc': rec has no function nofunc (help lists them): not armed",
        "crontasks: task 6 '*:*:*:*': give WD:H:M:S!module function: not armed",
        "crontasks: task 7 '7:0:0:0!rec hit D': WD 7 is out of range 0..6: not armed",
        notes[7],
        "extirqcbf: 'nosuch call' refused: unknown module nosuch (help lists them)",
        "extirq is on but has no valid extirqcbf: not armed",
    ]
    assert notes[7].startswith("crontasks: task 8 '*:*:*:*!rec hit(': ")
    assert st["timirq"].startswith("every 1000 ms: rec hit T |")
    assert st["cron"].startswith("1 tasks, next Mon 2026-11-16 08:30:00 |")
    log = n.log.read_text()
    assert "sched: crontasks: task 2 '*:24:0:0!rec hit B': H 24 is out of range 0..23" in log


CONF_BAD = [
    ("crontasks *:8:0:0!rec hit A;*:*:61:0!rec hit B",
     "Error: crontasks: task 2 '*:*:61:0!rec hit B': M 61 is out of range 0..59"),
    ("crontasks *:*:*:*!nosuch x", "Error: crontasks: task 1 '*:*:*:*!nosuch x': unknown module nosuch (help lists them)"),
    ("crontasks *:*:*:*!rec nofunc", "Error: crontasks: task 1 '*:*:*:*!rec nofunc': rec has no function nofunc (help lists them)"),
    ("crontasks 0:5-3:0:0!rec hit A", "Error: crontasks: task 1 '0:5-3:0:0!rec hit A': H range 5-3 goes backwards (only WD wraps)"),
    ("crontasks *:*:*!rec hit A", "Error: crontasks: task 1 '*:*:*!rec hit A': the time needs 4 fields WD:H:M:S, not 3"),
    ("crontasks:*:x:*:*!rec hit A", "Error: crontasks: task 1 '*:x:*:*!rec hit A': H 'x' is not a number, a range a-b or *"),
    ("timirqcbf rec hit A;rec nofunc", "Error: timirqcbf: 'rec nofunc': rec has no function nofunc (help lists them)"),
    ("extirqcbf nosuch x", "Error: extirqcbf: 'nosuch x': unknown module nosuch (help lists them)"),
]


def test_bad_schedules_refused_in_conf_mode(make_node):
    n = boot(make_node, [])
    before = n.config_path.read_text()
    with Shell(n.port) as sh:
        sh.cmd("conf")
        for line, reply in CONF_BAD:
            assert sh.cmd(line) == reply
        for text, msg in MALFORMED:  # every form the host refuses, refused by the node too
            reply = sh.cmd("crontasks *:8:0:0!rec hit A;" + text)
            assert reply.startswith(f"Error: crontasks: task 2 {text.strip()!r}: ") and msg in reply, reply
        assert n.config_path.read_text() == before
        assert sh.cmd("crontasks 5-1:8:0:0!rec hit A;*:*:*:*!system time") == "Saved (takes effect after reboot)"
        assert sh.cmd("timirqcbf rec hit T;system heartbeat") == "Saved (takes effect after reboot)"
        assert sh.cmd("crontasks n/a") == "Saved (takes effect after reboot)"
