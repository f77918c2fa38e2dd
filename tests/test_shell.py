"""The socket shell of a real micrOS node (MicroPython unix port) over TCP."""
import json
import re

import pytest

from microsctl.node.client import Shell, is_error


def test_prompt_and_hello(node, sh):
    assert sh.prompt == "node01 $ "
    hello = sh.cmd("hello")
    assert re.fullmatch(r"hello:node01:02:00:00(:[0-9a-f]{2}){3}", hello), hello


def test_version_and_help(node, sh):
    from microsctl.flashing.schema import device_module

    assert sh.cmd("version") == device_module("__init__").VERSION
    text = sh.cmd("help")
    for word in ("hello", "version", "exit", "reboot", "webrepl", "configure | conf", "dump",
                 "noconfigure | noconf", "<key>:<value>"):
        assert word in text
    lines = text.splitlines()
    sys_at = lines.index("  system")
    sys_funcs = []
    for ln in lines[sys_at + 1:]:
        if not ln.startswith("    "):
            break
        sys_funcs.append(ln.strip())
    assert {"memfree", "gccollect", "reboot", "wifirssi", "heartbeat", "time", "info"} <= set(sys_funcs)
    gpio_at = lines.index("  gpio")
    assert lines[gpio_at + 1: gpio_at + 6] == ["    RGB", "    RGB_deinit", "    state", "    Servo", "    Servo_deinit"]


def test_help_does_not_keep_modules_loaded(node, sh):
    sh.cmd("help")
    first = int(sh.cmd("system gccollect").split("GC MemFree[byte]: ")[1])
    sh.cmd("help")
    sh.cmd("help")
    again = int(sh.cmd("system gccollect").split("GC MemFree[byte]: ")[1])
    assert again >= first - 512  # listing modules twice more left nothing behind


def test_exit_says_bye_and_closes(node):
    with Shell(node.port) as s:
        assert s.cmd("exit") == "Bye!"
        assert s.closed


def test_webrepl_not_available_on_virtual_board(sh):
    assert sh.cmd("webrepl") == "Error: webrepl is not available on this board"
    assert sh.cmd("hello").startswith("hello:")


def test_memfree_lines(sh):
    out = sh.cmd("system memfree").splitlines()
    assert re.fullmatch(r"CPU\[Hz\]: \d+", out[0])
    assert re.fullmatch(r"GC MemFree\[byte\]: \d+", out[1])


def test_system_functions(sh):
    assert sh.cmd("system gccollect").startswith("CPU[Hz]: ")
    assert sh.cmd("system heartbeat") == "<3 heartbeat <3"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", sh.cmd("system time"))
    assert sh.cmd("system wifirssi") == "no STA connection"  # default profile: AP mode
    info = json.loads(sh.cmd("system info >json"))
    assert info["devfid"] == "node01" and info["nwmd"] == "AP" and info["safemode"] is False


def test_lm_call_both_syntaxes_and_json(sh):
    assert sh.cmd("gpio RGB(0,0,0)") == "SET RGB"
    assert sh.cmd("gpio RGB(1000, 500, 0)") == "SET RGB"
    pwm = json.loads(sh.cmd("sim pins >json"))["pwm"]
    assert pwm["25"] == [1000, 65535] and pwm["26"] == [1000, 32767] and pwm["27"] == [1000, 0]
    assert sh.cmd("gpio RGB 0 1000 0") == "SET RGB"
    assert json.loads(sh.cmd("sim pins >json"))["pwm"]["26"] == [1000, 65535]
    assert sh.cmd("gpio RGB b=1000") == "SET RGB"
    assert json.loads(sh.cmd("sim pins >json"))["pwm"]["27"] == [1000, 65535]
    assert sh.cmd("gpio RGB(1, g=2, b=3) >json") == '"SET RGB"'
    assert sh.cmd("gpio RGB_deinit") == "RGB OFF"
    assert json.loads(sh.cmd("sim pins >json"))["pwm"] == {}
    assert sh.cmd("gpio Servo(180)") == "SET SERVO 180"
    assert json.loads(sh.cmd("sim pins >json"))["pwm"]["15"] == [50, 8191]
    assert sh.cmd("gpio Servo_deinit") == "SERVO OFF"


def test_pinmap_override_moves_pins(make_node):
    n = make_node(sets=["pinmap=pwm_1:5,pwm_2:6"])
    with Shell(n.port) as s:
        s.cmd("gpio RGB(1000,1000,1000)")
        pwm = json.loads(s.cmd("sim pins >json"))["pwm"]
    assert set(pwm) == {"5", "6", "27"}  # pwm_3 keeps the ESP32 map's GPIO 27


@pytest.mark.parametrize("line, message", [
    ("foo bar", "Error: unknown module foo (help lists them)"),
    ("system nope", "Error: system has no function nope (help lists them)"),
    ("system _private", "Error: 'system _private': name a public function after the module"),
    ("system", "Error: 'system': give a module and a function, e.g. system memfree"),
    ("gpio RGB(1,2,3,4,5)", "Error: gpio RGB: RGB() takes 3 positional arguments but 5 were given"),
    ("gpio RGB(1,2", "Error: missing ) in 'RGB(1,2'"),
    ("gpio RGB(1,,2)", "Error: empty argument in '1,,2'"),
    ("gpio RGB('1)", "Error: unclosed quote in \"'1\""),
    ("gpio RGB(2000,0,0)", "Error: ValueError: a colour level is 0..1000, not 2000"),
    ("gpio RGB(x=1)", "Error: gpio RGB: unexpected keyword argument 'x'"),
    ("gpio RGB(1=2)", None),
    ("../x y", "Error: module '../x' is not a name"),
    ("gpio RGB(__import__('os'))", None),
])
def test_bad_calls_get_one_error_line(sh, line, message):
    reply = sh.cmd(line)
    assert len(reply.splitlines()) == 1 and reply.startswith("Error: "), reply
    if message:
        assert reply == message
    assert sh.cmd("hello").startswith("hello:")  # and the node keeps serving


def test_no_eval_of_arguments(node, sh):
    # expressions are not evaluated: they are refused, never run
    assert sh.cmd("gpio RGB(1+1,0,0)").startswith("Error: ")
    assert sh.cmd("system info(gc.collect())").startswith("Error: ")
    node.fs.joinpath("LM_echo.py").write_text("def args(*a, **k):\n    return [repr(a), repr(k)]\n")
    assert sh.cmd("echo args(1, -2, 0x10, 1.5, 'a b', \"c,d\", True, None, word, k=v)") == (
        "(1, -2, 16, 1.5, 'a b', 'c,d', True, None, 'word')\n{'k': 'v'}")


def test_user_lm_dropped_in_without_rebuild(node, sh):
    assert sh.cmd("mine hi") == "Error: unknown module mine (help lists them)"
    node.fs.joinpath("LM_mine.py").write_text(
        "def hi(name='you'):\n    return 'hi ' + name\n\ndef _secret():\n    return 1\n")
    assert sh.cmd("mine hi") == "hi you"
    assert sh.cmd("mine hi(name='bob')") == "hi bob"
    assert sh.cmd("mine _secret").startswith("Error: ")
    assert "  mine\n    hi" in sh.cmd("help")


def test_broken_user_lm_is_reported(node, sh):
    node.fs.joinpath("LM_bad.py").write_text("import nosuchmodule\n")
    assert sh.cmd("bad x").startswith("Error: ImportError")
    assert "  bad (cannot load:" in sh.cmd("help")
    assert sh.cmd("hello").startswith("hello:")


def test_long_line_gets_one_error_and_node_serves(node):
    with Shell(node.port) as s:
        reply = s.send_raw(b"x" * 65536 + b"\n")
        assert reply == "Error: line too long (max 1200 bytes)"
        assert s.cmd("hello").startswith("hello:")


def test_non_utf8_bytes(node):
    with Shell(node.port) as s:
        assert s.send_raw(b"\xff\xfe hello\n") == "Error: the line is not UTF-8 text"
        assert s.cmd("hello").startswith("hello:")


def test_client_cut_mid_line(node):
    s = Shell(node.port)
    s.sock.sendall(b"system mem")
    s.close()
    with Shell(node.port) as s2:
        assert s2.cmd("system memfree").startswith("CPU[Hz]")


def test_line_split_over_packets_and_crlf(node):
    import time

    with Shell(node.port) as s:
        s.sock.sendall(b"hel")
        time.sleep(0.05)
        s.sock.sendall(b"lo\r")
        time.sleep(0.05)
        assert s.send_raw(b"\n").startswith("hello:")
        # two commands in one packet: two replies, each followed by the prompt
        s.sock.sendall(b"version\nhello\n")
        assert s._read_reply().rstrip("\n")  # version
        assert s._read_reply().startswith("hello:")


def test_error_detection_for_one_shot_clients():
    assert is_error("Error: x")
    assert not is_error("SET RGB")


def test_help_unloads_what_it_loaded_everywhere(node, sh):
    # a module that help loaded must be gone from sys.modules, the package and the call cache
    node.fs.joinpath("LM_peek.py").write_text(
        "import sys\n"
        "def loaded():\n"
        "    from micros import call\n"
        "    m = sys.modules['micros']\n"
        "    return [('micros.LM_gpio' in sys.modules), hasattr(m, 'LM_gpio'), 'gpio' in call._mods]\n")
    assert sh.cmd("peek loaded >json") == "[false, false, false]"
    sh.cmd("help")
    assert sh.cmd("peek loaded >json") == "[false, false, false]"
    sh.cmd("gpio RGB_deinit")  # a real call keeps its module
    assert sh.cmd("peek loaded >json") == "[true, true, true]"
