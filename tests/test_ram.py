"""Issue 11, the core's own heap: long replies are written a piece at a time as they are
made, so none needs one free block as long as its text. On a board the heap is in pieces
while kilobytes are free (docs/ram.md: at the edge the largest free block is a few hundred
bytes), and a reply that needs one string of all its text fails there with `Error: out of
memory` while each of its lines would fit."""
import pytest

from microsctl.firmware import boards, build
from microsctl.node.client import Shell

# A user Load Module that leaves the heap in pieces: it fills every free block with
# HOLE-byte bytearrays, then lets every other one go, so the largest free block is about
# HOLE bytes (a bytearray's object and its data) while much more is free in all.
FRAG_LM = """import gc

_kept = []


def split(size):
    gc.collect()
    hold = []
    try:
        while True:
            hold.append(bytearray(size))
    except MemoryError:
        pass
    for i in range(0, len(hold), 2):
        hold[i] = None
    _kept.append(hold)
    gc.collect()
    return "split"


def rows(n):
    return ["row %03d of a long reply" % i for i in range(n)]
"""
HOLE = 400  # bytes: room for a line, a module dict, a list of 40 items; not for a 600 B string


@pytest.fixture(scope="module")
def romfs(tmp_path_factory):
    # the core runs in place from a ROMFS image, as frozen code does on a board: importing
    # micros.shellx after the heap is split costs its dict and functions, not its bytecode
    return build.build_sim(boards.get("sim"), out=tmp_path_factory.mktemp("simbuild"))


@pytest.fixture
def split_node(make_node, romfs):
    n = make_node(sets=["auth=False"], romfs=romfs, start=False)
    (n.fs / "LM_frag.py").write_text(FRAG_LM)
    n.start()
    return n


def test_dump_and_a_long_list_are_served_on_a_heap_in_pieces(split_node):
    with Shell(split_node.port) as a, Shell(split_node.port) as b:
        assert a.cmd("conf") == ""
        whole = a.cmd("dump")  # the reference, while the heap is whole
        assert len(whole) > HOLE and whole.startswith("staessid: ")
        rows = b.cmd("frag rows 40")
        assert len(rows) > 2 * HOLE and rows.splitlines()[39] == "row 039 of a long reply"
        assert b.cmd(f"frag split {HOLE}") == "split"
        # each reply longer than any free block: main wrote them as one string each
        # ("Error: out of memory (free N B)", 2026-11-25); now line by line, the same bytes
        assert a.cmd("dump") == whole
        assert b.cmd("frag rows 40") == rows
        assert a.cmd("dump mqtt") == "\n".join(x for x in whole.splitlines() if x.startswith("mqtt"))


def test_help_over_mqtt_is_the_shells_help(make_node):
    """micros.mqtt runs a command through micros.shell._answer(cl, line), which gives the whole
    reply as one string (an MQTT message is one payload): help, whose socket reply is made in
    pieces, comes whole, the same text (main's _answer gave help as a list, and the MQTT
    reply failed joining it)."""
    from tests.test_mqtt import Watch, mb, mqtt_sets
    from microsctl.mqtt.client import Fleet

    if not mb.mosquitto():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with mb.Mosquitto() as broker:
        w = Watch(broker.port, "micros/lamp01/#")
        try:
            n = make_node("lamp", sets=mqtt_sets(broker))
            assert w.wait(lambda m: m[0] == "micros/lamp01/status" and m[1] == "online"), "never came online"
            with Shell(n.port) as s:
                text = s.cmd("help")
            assert "\n  system\n    memfree" in text
            f = Fleet(broker.url).connect()
            try:
                assert f.command("lamp01", "help") == text
                assert f.command("lamp01", "conf\ndump mqttpfx\nnoconf") == "\nmqttpfx: micros\n"
            finally:
                f.close()
        finally:
            w.close()
