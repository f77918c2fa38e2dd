"""A node that no one on the network can exhaust or lock out (issue 10, points 1, 2, 3, 7),
on the real MicroPython unix port over TCP."""
import json
import re
import socket
import subprocess
import threading
import time


from microsctl.bench.robust import hoard  # the bench holds the same load
from microsctl import FROZEN
from microsctl.node.client import PROMPT, Shell
from microsctl.node.sim import micropython


def free(sh):
    return int(sh.cmd("system gccollect").split("GC MemFree[byte]: ")[1])


def unknown(i):
    """The i-th of four kinds of unknown name: module, function, keyword, conf key."""
    k = i % 4
    if k == 0:
        return "zq%dm memfree" % i, "Error: unknown module zq%dm (help lists them)" % i
    if k == 1:
        return "system zq%df" % i, "Error: system has no function zq%df (help lists them)" % i
    if k == 2:
        return "gpio RGB(zq%dk=1)" % i, "Error: gpio RGB: unexpected keyword argument 'zq%dk'" % i
    return "conf zq%dc" % i, None


# -- 1. input never costs heap permanently -------------------------------------------------

def test_ten_thousand_unknown_names_cost_no_heap(node):
    # py/builtinimport.c, py/modbuiltins.c getattr and py/runtime.c's **kwargs each intern
    # the name they are given: before the fix every distinct name stayed in the qstr pool
    with Shell(node.port) as sh, Shell(node.port) as conf_sh:
        conf_sh.cmd("conf")
        for i in range(4):  # every path used once: modules loaded, buffers grown
            line, want = unknown(i)
            (conf_sh if want is None else sh).cmd(line.split(" ", 1)[1] if want is None else line)
        before = free(sh)
        for i in range(4, 10004):
            line, want = unknown(i)
            if want is None:
                reply = conf_sh.cmd(line.split(" ", 1)[1])
                assert reply == "Error: Invalid key: zq%dc (dump lists the keys)" % i, reply
            else:
                reply = sh.cmd(line)
                assert reply == want, reply
        after = free(sh)
        assert before - after < 1024, (before, after)
        assert sh.cmd("system memfree").startswith("CPU[Hz]")
        assert sh.cmd("hello").startswith("hello:")


# -- 2. out of memory is an answer ----------------------------------------------------------

HOG = """import gc
def call():
    return bytearray(1 << 30)
def reply():
    # a reply that fits once, not twice: the shell's own join with the prompt runs out
    gc.collect()
    return "x" * (gc.mem_free() * 6 // 10)
"""


def test_out_of_memory_in_a_call_and_in_the_reply_is_one_error_line(node):
    node.fs.joinpath("LM_hog.py").write_text(HOG)
    with Shell(node.port) as sh:
        for line in ("hog call", "hog reply", "hog call >json"):
            reply = sh.cmd(line)
            assert len(reply.splitlines()) == 1, reply[:200]
            assert reply.startswith("Error: out of memory (free ") and reply.endswith(" B)"), reply[:200]
            assert sh.cmd("hello").startswith("hello:")  # the session goes on
        assert sh.cmd("system memfree").startswith("CPU[Hz]")
    time.sleep(0.2)
    assert "Task exception wasn't retrieved" not in node.log.read_text()


# -- 3. slots cannot be hoarded -------------------------------------------------------------

def connect(port, src="127.0.0.1"):
    """A raw client from a loopback source address (127.0.0.0/8 is all loopback on Linux)."""
    s = socket.create_connection(("127.0.0.1", port), 5, source_address=(src, 0))
    s.settimeout(5)
    return s


def read_reply(s):
    buf = b""
    while not PROMPT.search(buf.decode(errors="replace")):
        chunk = s.recv(4096)
        if not chunk:
            return buf.decode(errors="replace"), True
        buf += chunk
    return buf.decode(errors="replace"), False


def test_slowloris_is_idle_from_its_last_complete_command(make_node):
    n = make_node(sets=["soctout=2"])
    s = connect(n.port)
    read_reply(s)
    s.sendall(b"hello\n")  # a line client (docs/compatibility.md): only a newline ends a command
    assert read_reply(s)[0].startswith("hello:")
    t0 = time.monotonic()
    got = b""
    s.settimeout(0.3)
    sending = True
    while time.monotonic() - t0 < 8:  # one byte every 0.3 s, never a newline
        if sending:
            try:
                s.sendall(b"x")
            except OSError:  # the node closed first: what it said before is still to be read
                sending = False
        try:
            chunk = s.recv(1024)
        except socket.timeout:
            continue
        except OSError:  # reset: the node closed with our last bytes unread (RST on Linux as on lwIP)
            break
        if not chunk:
            break
        got += chunk
    # before: each byte restarted the idle time; the sweep runs once a second, so 2 or 3 s
    assert re.search(rb"Bye! \(idle for [23] s\)", got), got
    assert time.monotonic() - t0 < 7
    s.close()


def test_a_full_node_gives_the_longest_idle_slot_to_a_newcomer(node):
    # the sim's 24 slots (boards/sim/micros_board.py); one address holds at most 23
    a = [connect(node.port) for _ in range(23)]
    for s in a:
        read_reply(s)
    for s in a[1:]:  # all but the first have just worked: a[0] is the longest idle
        s.sendall(b"hello\n")
        assert read_reply(s)[0].startswith("hello:")
    b = connect(node.port, "127.0.0.2")  # another address: a free slot, nobody leaves
    assert read_reply(b)[0].endswith(" $ ")
    c = connect(node.port, "127.0.0.3")  # full: a[0] gives up its slot
    read_reply(c)
    c.sendall(b"hello\n")
    assert read_reply(c)[0].startswith("hello:")
    text, closed = read_reply(a[0])
    assert "Bye! (slot given to a new client)" in text and closed
    # 127.0.0.1 is at its cap: its next newcomer takes its own longest idle, never b's slot
    d = connect(node.port)
    read_reply(d)
    d.sendall(b"hello\n")
    assert read_reply(d)[0].startswith("hello:")
    assert read_reply(a[1])[1]  # closed
    b.sendall(b"hello\n")
    assert read_reply(b)[0].startswith("hello:")
    for s in a + [b, c, d]:
        s.close()


def test_a_fresh_client_is_served_within_a_second_while_slots_are_hoarded(node):
    stop = threading.Event()
    t = threading.Thread(target=hoard, args=(node.port, 200, 50, stop), daemon=True)
    t.start()
    try:
        time.sleep(3)  # every slot taken, the hoarder reopening what the node closes
        for _ in range(10):
            t0 = time.monotonic()
            s = socket.create_connection(("127.0.0.1", node.port), 5)
            s.settimeout(5)
            read_reply(s)
            s.sendall(b"hello\n")
            reply, _ = read_reply(s)
            took = time.monotonic() - t0
            s.close()
            assert reply.startswith("hello:"), reply
            assert took < 1.0, took
            time.sleep(0.3)
    finally:
        stop.set()
        t.join(10)


# -- 7. the small ones ---------------------------------------------------------------------

def test_keyword_without_a_value_is_an_error_line(sh):
    assert sh.cmd("system info r=") == "Error: bad argument r="
    assert sh.cmd("gpio RGB(r=)") == "Error: bad argument r="


def test_dump_as_json_is_one_object_with_secrets_masked(make_node):
    n = make_node(sets=["stapwd=s3cret-wifi", "appwd=s3cret-app"])
    with Shell(n.port) as sh:
        sh.cmd("conf")
        d = json.loads(sh.cmd("dump >json"))
        assert d["devfid"] == "node01" and d["socport"] == n.port and d["pled"] is True
        assert d["stapwd"] == "*****" and d["appwd"] == "*****"
        assert "s3cret" not in json.dumps(d)
        assert json.loads(sh.cmd("dump soc >json")) == {"socport": n.port, "soctout": 100}
        assert sh.cmd("dump soc") == "soctout: 100\nsocport: %d" % n.port  # text as before


def test_sim_driving_functions_exist_only_when_the_node_is_started_for_tests(make_node, monkeypatch):
    monkeypatch.delenv("MICROS_SIM_DRIVE", raising=False)
    plain = make_node(drive=False)
    with Shell(plain.port) as sh:
        for line in ("sim set_clock 1800000000", "sim step_clock 5", "sim edge pwm_4 1"):
            assert sh.cmd(line).startswith("Error: sim has no function "), line
        assert float(sh.cmd("sim clock")) > 0  # reading the board stays
    driven = make_node()  # the tests' opt-in (tests/conftest.py)
    with Shell(driven.port) as sh:
        assert sh.cmd("sim set_clock 1800000000").startswith("18000000")


CONF_ONLY = """
import sys
sys.path[:] = ["%s", ".frozen"]
from micros import conf
print(conf.get("socport"), conf.get("devfid"), conf.get("pled"))
"""


def test_conf_get_answers_defaults_before_the_config_is_loaded(tmp_path):
    # safe mode after conf.load() ran out of memory: the shell still reads its port
    res = subprocess.run([micropython(), "-c", CONF_ONLY % FROZEN], capture_output=True, text=True,
                         timeout=30, cwd=tmp_path)
    assert res.stdout.split() == ["9008", "node01", "True"], res.stderr


def test_a_core_too_big_for_the_heap_rescues_instead_of_exiting(make_node, monkeypatch):
    # 38k: the core's .mpy modules and 64-bit objects do not fit on the unix port (docs/
    # benchmarks.md, forms). As on a board whose main.py cannot import the core: WebREPL
    # rescue with appwd, the node stays up (ports/esp8266/main.c runs the REPL after main.py)
    from tests.test_chip_node import _boot_until, _webrepl_login
    from microsctl.node.sim import free_port

    wport = free_port()
    monkeypatch.setenv("MICROS_SIM_WEBREPL", str(wport))
    n = make_node(board="esp8266", heap="38k", start=False)
    proc, out = _boot_until(n, "WebREPL server started")
    try:
        assert "the micrOS core does not fit in this heap" in out and "Traceback" not in out, out
        assert _webrepl_login(wport, "ADmin123") == b"\r\nWebREPL connected\r\n>>> "
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    plain = make_node(heap="38k", start=False)  # the plain sim: no WebREPL, one line each, no traceback
    out = plain.boot_log(until="no WebREPL rescue")
    assert "the micrOS core does not fit in this heap" in out and "Traceback" not in out, out
