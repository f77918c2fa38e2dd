"""cron.py, the device's cron parser and matcher: on CPython (with hypothesis, the
way the host loads it) and on MicroPython itself, against an oracle written here."""
import datetime
import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microsctl import FROZEN, MicrosError
from microsctl.flashing import schema
from microsctl.node.sim import micropython

cron = schema.device_module("cron")
conf = schema.device_module("conf")

TOPS = (6, 23, 59, 59)  # WD H M S
EWD = 3  # 1970-01-01 was a Thursday


# -- oracle: sets of values, and brute force over datetime --
def values(spec, top, wraps):
    if spec == "*":
        return set(range(top + 1))
    lo, _, hi = spec.partition("-")
    lo, hi = int(lo), int(hi or lo)
    if lo <= hi:
        return set(range(lo, hi + 1))
    assert wraps
    return set(range(lo, top + 1)) | set(range(0, hi + 1))


def oracle_sets(text):
    when = text.split("!")[0].split(":")
    return [values(f, top, i == 0) for i, (f, top) in enumerate(zip(when, TOPS))]


def oracle_match(sets, t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.weekday() in sets[0] and d.hour in sets[1] and d.minute in sets[2] and d.second in sets[3]


def oracle_next(sets, t):
    day0 = t - t % 86400
    for d in range(8):
        day = day0 + d * 86400
        if datetime.datetime.fromtimestamp(day, datetime.timezone.utc).weekday() not in sets[0]:
            continue
        for h in sorted(sets[1]):
            for m in sorted(sets[2]):
                for s in sorted(sets[3]):
                    if day + h * 3600 + m * 60 + s >= t:
                        return day + h * 3600 + m * 60 + s
    raise AssertionError("no firing")


def field(top, wraps):
    num = st.integers(0, top)
    rng = st.tuples(num, num).filter(lambda p: wraps or p[0] <= p[1]).map(lambda p: "%d-%d" % p)
    return st.one_of(st.just("*"), num.map(str), rng)


task_text = st.tuples(*(field(top, i == 0) for i, top in enumerate(TOPS))).map(
    lambda f: ":".join(f) + "!system time")
instants = st.integers(0, 4_000_000_000)


@settings(max_examples=300, deadline=None)
@given(task_text, instants)
def test_match_and_next_agree_with_the_oracle(text, t):
    c = cron.task(text)
    sets = oracle_sets(text)
    assert cron.match(c, t, EWD) == oracle_match(sets, t)
    n = cron.next_at(c, t, EWD)
    assert n == oracle_next(sets, t)
    assert cron.match(c, n, EWD)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789*-:!; abx\t", max_size=40))
def test_garbage_gives_errors_never_crashes(text):
    tasks, errors = cron.parse(text)
    assert len(tasks) + len(errors) == len(cron.split(text))
    for i, e in enumerate(errors):
        assert e.startswith("task ")
    for c in tasks:
        assert all(0 <= c[i] <= TOPS[i // 2] for i in range(8))
        assert c[2] <= c[3] and c[4] <= c[5] and c[6] <= c[7]


@settings(max_examples=200, deadline=None)
@given(st.lists(task_text, min_size=1, max_size=5))
def test_lists_parse_whole(texts):
    tasks, errors = cron.parse(" ; ".join(texts) + ";")
    assert errors == [] and len(tasks) == len(texts)


# Every malformed form: (task, what the message says). The message also names the task.
MALFORMED = [
    ("1:2:3!system time", "the time needs 4 fields WD:H:M:S, not 3"),
    ("1:2:3:4:5!system time", "the time needs 4 fields WD:H:M:S, not 5"),
    ("1:2:3:4 system time", "give WD:H:M:S!module function"),
    ("!system time", "the time needs 4 fields WD:H:M:S, not 1"),
    ("7:0:0:0!system time", "WD 7 is out of range 0..6"),
    ("*:24:0:0!system time", "H 24 is out of range 0..23"),
    ("*:*:60:0!system time", "M 60 is out of range 0..59"),
    ("*:*:*:60!system time", "S 60 is out of range 0..59"),
    ("*:*:*:-1!system time", "S '-1' is not a number, a range a-b or *"),
    ("*:5-3:0:0!system time", "H range 5-3 goes backwards (only WD wraps)"),
    ("*:*:50-10:0!system time", "M range 50-10 goes backwards (only WD wraps)"),
    ("1-9:0:0:0!system time", "WD 9 is out of range 0..6"),
    ("*:1-2-3:0:0!system time", "H '1-2-3' is not a number, a range a-b or *"),
    ("*:a:0:0!system time", "H 'a' is not a number, a range a-b or *"),
    ("*::0:0!system time", "H is empty (use * for every value)"),
    ("*:*:*:1.5!system time", "S '1.5' is not a number, a range a-b or *"),
    ("*:*:*:**!system time", "S '**' is not a number, a range a-b or *"),
    ("sunrise!system time", "the time needs 4 fields WD:H:M:S, not 1"),
    ("*:*:*:*!", "no LM call after !"),
    ("*:*:*:*!   ", "no LM call after !"),
    ("*:*:*:*!system", "give a module and a function"),
    ("*:*:*:*!system time(", "missing ) in"),
    ("*:*:*:*!system _secret", "public function"),
]


@pytest.mark.parametrize("text, msg", MALFORMED)
def test_malformed_task_is_named_in_the_error(text, msg):
    with pytest.raises(conf.ConfError) as err:
        cron.check("crontasks", "*:8:0:0!system time;" + text)
    assert f"task 2 {text.strip()!r}" in str(err.value) and msg in str(err.value)
    with pytest.raises(MicrosError, match="setting crontasks: task 2"):
        schema.validate("crontasks", "*:8:0:0!system time;" + text)


@pytest.mark.parametrize("key", ["timirqcbf", "extirqcbf"])
def test_callback_syntax_checked_on_the_host(key):
    assert schema.validate(key, "system heartbeat;gpio RGB(0,0,8)") == "system heartbeat;gpio RGB(0,0,8)"
    assert schema.validate(key, "n/a") == "n/a"
    assert schema.validate(key, "nosuchmod func") == "nosuchmod func"  # resolved on the device only
    with pytest.raises(MicrosError, match=f"setting {key}: 'gpio RGB\\(0,0': missing \\)"):
        schema.validate(key, "system heartbeat;gpio RGB(0,0")


def test_empty_and_disabled_lists():
    assert cron.parse("n/a") == ([], [])
    assert cron.parse(" ; ;") == ([], [])
    tasks, _ = cron.parse(" 5-1 : 8 : 0-30 : * ! gpio RGB(0,0,8) ")
    assert tasks == [(5, 1, 8, 8, 0, 30, 0, 59, "gpio RGB(0,0,8)")]


# MicroPython: the same module, the same oracle, small ints only.
MP_SCRIPT = r"""
import sys, json
sys.path.insert(0, %r)
import micros.cron as cron
import time
out = []
for text, t0, span in json.loads(sys.stdin.read()):
    c = cron.task(text)
    ewd = time.gmtime(0)[6]
    fires = []
    t = t0
    while True:
        t = cron.next_at(c, t, ewd)
        if t > t0 + span:
            break
        fires.append(t)
        t += 1
    brute = [s for s in range(t0, t0 + span + 1) if cron.match(c, s, ewd)] if span <= 200000 else None
    out.append([fires, brute])
print(json.dumps(out))
"""


def test_cron_on_micropython_against_the_oracle():
    t0 = 1794787200  # Mon 2026-11-16 00:00:00 UTC
    cases = [
        ("*:8:30:0!a b", t0 - 5000, 7 * 86400),
        ("5-1:12:0:0!a b", t0 + 3, 14 * 86400),
        ("2:*:0:0!a b", t0, 8 * 86400),
        ("*:*:15-16:30!a b", t0 + 999, 2 * 86400),
        ("4:23:59:58-59!a b", t0, 8 * 86400),
        ("6:3:0-1:*!a b", t0 - 86400, 9 * 86400),
        ("*:*:*:*!a b", t0 + 86400 - 100, 200),
        ("3-3:22-23:58-59:0-1!a b", t0 - 1, 3 * 86400),
    ]
    src = MP_SCRIPT % str(FROZEN)
    res = subprocess.run([micropython(), "-c", src], input=json.dumps(cases), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr + res.stdout
    for (text, start, span), (fires, brute) in zip(cases, json.loads(res.stdout)):
        sets = oracle_sets(text)
        want = []
        t = start
        while True:
            t = oracle_next(sets, t)
            if t > start + span:
                break
            want.append(t)
            t += 1
        assert fires == want, text
        if brute is not None:
            assert brute == [s for s in range(start, start + span + 1) if oracle_match(sets, s)]


# The board's IRQ hand-over (ThreadSafeFlag; the virtual board uses an Event), on MicroPython.
TSF_SCRIPT = r"""
import sys, os
sys.path[:0] = [%r, %r, %r]
os.chdir(%r)
import asyncio, machine
from micros import conf, sched
conf.load()
conf.set("extirq", True)
conf.set("extirqprell", 200)
conf.set("extirqcbf", "rec hit")
sched.FLAG = asyncio.ThreadSafeFlag

async def main():
    sched.start()
    assert isinstance(sched._flag, asyncio.ThreadSafeFlag)
    for _ in range(5):
        machine.edge(4, 1)
        machine.edge(4, 0)
    await asyncio.sleep_ms(50)
    first = sched.N[sched.EXT]
    await asyncio.sleep_ms(250)
    machine.edge(4, 1)
    await asyncio.sleep_ms(50)
    print(first, sched.N[sched.EXT], sched.N[sched.EXT + 1], sched.N[sched.EXT + 2], len(open("rec.log").read()))

asyncio.run(main())
"""


def test_threadsafeflag_handover_on_micropython(tmp_path):
    from microsctl import PORTS

    (tmp_path / "LM_rec.py").write_text("def hit():\n    open('rec.log', 'a').write('x')\n")
    from microsctl import BOARDS

    src = TSF_SCRIPT % (str(PORTS / "unix"), str(FROZEN), str(BOARDS / "sim"), str(tmp_path))
    res = subprocess.run([micropython(), "-c", src], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.split() == ["1", "2", "0", "6", "2"]  # 6 rising edges, 2 callbacks
