"""File updates over the node's shell, all or nothing (`invoke ota`).

The node side is frozen/micros/ota.py, reached through the shell's `ota` command:
each file is announced with its size and sha256, sent as base64 lines of at most the chunk
the node names (its receive buffer is one shell line), checked on the node, and staged under
.ota/; `ota commit N` moves them into place only when all N arrived, then the node restarts.
After the restart the tool reconnects and asks the node for the sha256 of every file it
sent: the update is done only when the node came back with exactly those bytes.

A connection cut or a node reset before the commit leaves the previous files running
(the node discards .ota/ at boot); a reset during the commit is finished at boot.
Settings (`--set KEY=VALUE`) are checked on the host and again on the node as conf.set checks
them, and written at the commit with the files. Load Modules (LM_*.py) are compiled to .mpy for the node's architecture first
(microsctl/firmware/compile.py); other files go as they are.
"""
import base64
import contextlib
import hashlib
import sys
import tempfile
import time
from pathlib import Path

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.firmware.compile import compile_one
from microsctl.node.client import Shell, is_error

NAME_MAX = 48  # _NAME_MAX in frozen/micros/ota.py


def collect(paths, board=None, profile=None, allow_empty=False):
    """{node file name: bytes} of what to send: LM_*.py compiled to .mpy (-march of the board's
    mpy arch when a board is named; else bytecode only, which every port loads), the rest as is;
    with a profile, its Load Modules that are not frozen in the core."""
    from microsctl.flashing import profiles

    srcs = [Path(p) for p in paths or ()]
    if profile:
        srcs += [p for p in (profiles.module_source(m) for m in profiles.load(profile)["modules"]) if p]
    if not srcs and not allow_empty:
        raise MicrosError("nothing to send: name files with --files, a profile with --profile, or --set KEY=VALUE")
    arch = boards.get(board).mpy.arch if board else None
    out = {}
    with tempfile.TemporaryDirectory(prefix="micros-ota-") as tmp:
        for src in srcs:
            if not src.is_file():
                raise MicrosError(f"no file {src}: check the path given to --files")
            if src.name.startswith("LM_") and src.suffix == ".py":
                mpy = compile_one(src, Path(tmp) / (src.stem + ".mpy"), src.name, arch)
                name, data = mpy.name, mpy.read_bytes()
            else:
                name, data = src.name, src.read_bytes()
            if len(name) > NAME_MAX or name.startswith(".") or name.endswith(".part"):
                raise MicrosError(f"{name}: a node file name has 1..{NAME_MAX} characters, no leading dot")
            if name in out:
                raise MicrosError(f"{name} is named twice")
            out[name] = data
    return out


def _ok(sh, line, what):
    reply = sh.cmd(line)
    if sh.closed:
        raise MicrosError(f"the node closed the connection during {what}: nothing was changed on it; run again")
    if is_error(reply):
        raise MicrosError(f"the node refused {what}: {reply.splitlines()[-1][len('Error: '):]}")
    return reply


def send(sh, files, progress=None, settings=None):
    """Stage and commit `files` ({name: bytes}) and `settings` ({key: text}) over an open Shell;
    returns bytes sent on the wire."""
    ready = _ok(sh, "ota begin", "the update")
    if not ready.startswith("ota ready "):
        raise MicrosError(f"the node does not know file updates ({ready!r}): update its firmware first "
                          "(invoke update)")
    chunk = int(ready.split()[2])
    wire = 0
    total = sum(len(d) for d in files.values())
    done = 0
    for name, data in files.items():
        line = f"ota file {name} {len(data)} {hashlib.sha256(data).hexdigest()}"
        _ok(sh, line, f"{name}")
        wire += len(line) + 1
        for i in range(0, len(data), chunk):
            line = "ota data " + base64.b64encode(data[i : i + chunk]).decode()
            _ok(sh, line, f"{name}")
            wire += len(line) + 1
            done += len(data[i : i + chunk])
            if progress:
                progress(done, total)
        _ok(sh, "ota end", f"{name}")
    for key, val in (settings or {}).items():
        line = f"ota set {key} {val}"
        _ok(sh, line, f"the setting {key}")
        wire += len(line) + 1
    line = f"ota commit {len(files)} {len(settings or {})}"
    reply = _ok(sh, line, "the commit")
    wire += len(line) + 1 + 24 * len(files)
    if not reply.startswith(f"ota committed {len(files)}"):
        raise MicrosError(f"the node answered the commit with {reply!r}")
    return wire


def wait_back(port, host, timeout):
    """An open Shell once the node answers again after its restart."""
    end = time.monotonic() + timeout
    time.sleep(0.3)  # the node restarts 100 ms after its reply
    while True:
        try:
            return Shell(port, host, timeout=5)
        except MicrosError:
            if time.monotonic() > end:
                raise MicrosError(f"the node at {host}:{port} did not come back within {timeout} s after the update: "
                                  "check it on its serial console") from None
            time.sleep(0.2)


def push(files, port, host="127.0.0.1", timeout=60, progress=None, settings=None):
    """Send files and settings, let the node restart, check it runs them. Returns a report dict."""
    settings = checked_settings(settings)
    t0 = time.monotonic()
    with Shell(port, host) as sh:
        try:
            wire = send(sh, files, progress, settings)
        except MicrosError:
            if not sh.closed:
                try:
                    sh.cmd("ota abort")
                except MicrosError:
                    pass
            raise
    sent = time.monotonic() - t0
    with wait_back(port, host, timeout) as sh:
        for name, data in files.items():
            got = sh.cmd(f"ota sum {name}")
            if got != hashlib.sha256(data).hexdigest():
                raise MicrosError(f"the node came back without {name} as sent (its sha256: {got}): run again")
        if settings:
            _check_settings(sh, settings)
        hello = sh.cmd("hello")
        version = sh.cmd("version")
    return {"version": version, "files": sorted(files), "settings": sorted(settings), "bytes": sum(len(d) for d in files.values()), "wire": wire,
            "seconds": sent, "total_seconds": time.monotonic() - t0, "hello": hello}


def checked_settings(settings):
    """{key: text} checked as the node checks them (schema.validate runs conf.py's rules)."""
    from microsctl.flashing import schema

    out = {}
    for key, val in (settings or {}).items():
        if "\n" in str(val):
            raise MicrosError(f"the setting {key} is one line of text")
        schema.validate(key, str(val))
        out[key] = str(val)
    return out


def _check_settings(sh, settings):
    """Each setting read back in conf mode (a secret only shows that it is set)."""
    from microsctl.flashing import schema

    secret = schema.secrets()
    sh.cmd("conf")
    try:
        for key, val in settings.items():
            got = sh.cmd(key)
            want = "*****" if key in secret else str(schema.validate(key, val))
            if got != want:
                raise MicrosError(f"the node came back with {key}={got}, not what was sent: run again")
    finally:
        sh.cmd("noconf")


def ota(port, host="127.0.0.1", files=(), board=None, profile=None, timeout=60, sets=None):
    """`invoke ota` on one node: collect, push, report."""
    from microsctl.flashing import schema

    settings = checked_settings(schema.parse_sets(sets))
    payload = collect(files, board, profile, allow_empty=bool(settings))
    return _one(payload, settings, port, host, timeout)


def byte_progress(line, step, lock=None, also=None):
    """A push's progress callback (done, total): prints `line` (formatted with done and total) each
    `step` percent and at the end, under `lock` when several pushes share stderr; `also` is
    called with every report."""
    last = [0]

    def progress(done, total):
        if also:
            also(done, total)
        pct = done * 100 // max(total, 1)
        if pct >= last[0] + step or done == total:
            last[0] = pct
            with lock or contextlib.nullcontext():
                print(line.format(done=done, total=total), file=sys.stderr, flush=True)

    return progress


def _one(payload, settings, port, host, timeout):
    what = [f"{n} ({len(d)} B)" for n, d in payload.items()] + [f"setting {k}" for k in settings]
    print(f"[ota] sending {', '.join(what)} to {host}:{port}", file=sys.stderr, flush=True)
    res = push(payload, port, host, timeout, byte_progress("[ota] {done}/{total} bytes", 25), settings)
    print(f"[ota] committed; the node restarted and runs what was sent ({res['hello']})", file=sys.stderr)
    return res
