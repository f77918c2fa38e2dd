"""The LM-call parser, run on MicroPython itself and fuzzed on CPython."""
import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microsctl import FROZEN
from microsctl.flashing.schema import device_module
from microsctl.node.sim import micropython

CASES = [
    ("system memfree", ["system", "memfree", [], {}]),
    ("gpio RGB(0,0,0)", ["gpio", "RGB", [0, 0, 0], {}]),
    ("gpio RGB (1, 2 ,3)", ["gpio", "RGB", [1, 2, 3], {}]),
    ("gpio RGB 1 2 3", ["gpio", "RGB", [1, 2, 3], {}]),
    ("gpio RGB()", ["gpio", "RGB", [], {}]),
    ("m f 'a b' \"c d\"", ["m", "f", ["a b", "c d"], {}]),
    ("m f('x,y', z)", ["m", "f", ["x,y", "z"], {}]),
    ("m f -1 +2 0x1f 1.5 -0.25 1e3", ["m", "f", [-1, 2, 31, 1.5, -0.25, 1000.0], {}]),
    ("m f True False None", ["m", "f", [True, False, None], {}]),
    ("m f 1 k=v n=2", ["m", "f", [1], {"k": "v", "n": 2}]),
    ("m f(1, k='a=b')", ["m", "f", [1], {"k": "a=b"}]),
    ("m f '=x'", ["m", "f", ["=x"], {}]),
    ("m f ''", ["m", "f", [""], {}]),
]

ERRORS = [
    ("system", "give a module and a function"),
    ("m _f", "name a public function"),
    ("m f(1", "missing )"),
    ("m f(1,,2)", "empty argument"),
    ("m f(1,)", "empty argument"),
    ("m f 'abc", "unclosed quote"),
    ("m f k=1 2", "positional argument after keyword"),
    ("m f 1+1", "bad number"),
    ("m f a(b)", "one function name before ("),
    ("m f(a(b))", "bad argument"),
    ("m f [1]", "bad argument"),
]

SCRIPT = """
import sys, json
sys.path[:] = ["%s", ".frozen"]
from micros import call
out = []
for line in json.loads(sys.stdin.read()):
    try:
        m, f, a, k = call.parse(line)
        out.append(["ok", [m, f, a, k]])
    except call.CallError as e:
        out.append(["err", str(e)])
print(json.dumps(out))
"""


def run_on_micropython(lines):
    res = subprocess.run([micropython(), "-c", SCRIPT % FROZEN], input=json.dumps(lines),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_parser_on_micropython():
    lines = [c[0] for c in CASES] + [e[0] for e in ERRORS]
    got = run_on_micropython(lines)
    for (line, want), (kind, val) in zip(CASES, got):
        assert kind == "ok" and val == want, (line, val)
    for (line, msg), (kind, val) in zip(ERRORS, got[len(CASES):]):
        assert kind == "err" and msg in val, (line, val)


call = device_module("call")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_any_text_parses_or_gives_a_call_error(text):
    try:
        mod, func, args, kw = call.parse(text)
    except call.CallError:
        return
    assert isinstance(args, list) and isinstance(kw, dict)
    assert func and not func.startswith("_")


ARG = st.one_of(
    st.integers(-10**6, 10**6),
    st.booleans(),
    st.none(),
    st.text(alphabet="abcdefgh xyz,=-", max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ARG, max_size=5), st.booleans())
def test_round_trip_of_literal_arguments(values, paren):
    def show(v):
        return "'%s'" % v if isinstance(v, str) else repr(v)

    if paren:
        line = "m f(%s)" % ", ".join(show(v) for v in values)
    else:
        line = "m f " + " ".join(show(v) for v in values)
    assert call.parse(line) == ("m", "f", values, {})


@pytest.mark.parametrize("line", ["m f(__import__('os').system('x'))", "m f(open('x'))", "m f eval('1')"])
def test_code_is_never_accepted_as_an_argument(line):
    with pytest.raises(call.CallError):
        call.parse(line)
