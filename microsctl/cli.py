"""The invoke tasks. Each is a thin layer over a module of this package."""
import functools

from invoke import Collection, Exit, task

from . import MicrosError


def user_errors(fn):
    """Turn a MicrosError into one clear line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        try:
            return fn(*args, **kw)
        except MicrosError as err:
            raise Exit(f"error: {err}", code=1) from err

    return wrapper


@task(
    help={
        "profile": "config profile from config_profiles/ (default: default)",
        "port": "TCP port of the shell on 127.0.0.1 (default: the profile's socport, 9008)",
        "heap": "MicroPython heap size, e.g. 38k for an ESP8266-sized heap (default: 128k, ESP32-like)",
        "set": "KEY=VALUE config setting on top of the profile; repeatable",
        "node": "node name; its filesystem lives in build/sim/<node>/ (default: the profile name)",
        "fresh": "start from a new filesystem instead of the node's kept one",
    },
    iterable=["set"],
)
@user_errors
def sim(c, profile="default", port=None, heap="128k", set=None, node=None, fresh=False):
    """Boot a virtual micrOS node in the foreground (Ctrl-C stops it)."""
    from . import profiles
    from .sim import SimNode

    prof = profiles.load(profile)
    n = SimNode(node or profile, heap=heap)
    cfg = n.prepare(profile, set, port, fresh)
    print(f"[sim] node {n.name}: profile {profile}, filesystem {n.fs}")
    print(f"[sim] shell: invoke shell --port {cfg['socport']}")
    for ex in prof["examples"]:
        print(f"[sim]   try: invoke shell --port {cfg['socport']} -c {ex!r}")
    try:
        rc = n.run()
    except KeyboardInterrupt:
        n.stop()
        rc = 0
    if rc:
        raise Exit(f"error: the virtual node exited with status {rc} (see its output above)", code=1)


@task(
    help={
        "port": "TCP port of the node's shell (default 9008)",
        "host": "node address (default 127.0.0.1)",
        "command": "run this command (several: one per line) and exit; without it, an interactive shell",
    },
    # invoke has no optional positional arguments (pyinvoke/invoke#159), so the
    # one-shot command is the flag -c/--command; without it the shell is interactive.
    positional=[],
)
@user_errors
def shell(c, port=9008, host="127.0.0.1", command=None):
    """Talk to a node's shell: interactively, or one command and exit (status 1 on an error reply)."""
    from . import client

    if not command:
        rc = client.interactive(int(port), host)
    else:
        rc = client.one_shot(int(port), [ln for ln in command.splitlines() if ln.strip()], host)
    if rc:
        raise Exit(code=rc)


@task(
    help={
        "only": "run just this section (see microsctl/bench.py SECTIONS)",
        "quick": "fewer iterations, for a smoke run",
    }
)
@user_errors
def bench(c, only=None, quick=False):
    """Measure speed and memory; print the figures and record them in docs/benchmarks.md."""
    from . import bench as b

    b.run(only, quick)


@task
@user_errors
def boards(c):
    """List the boards (boards/*/board.json): chip, flash, firmware and filesystem offsets."""
    from . import boards as db

    print(db.listing())


@task(
    help={
        "board": "board name or alias (invoke boards lists them): esp8266, esp32, esp32c3, esp32s3, sim",
        "variant": "MicroPython board variant, e.g. FLASH_1M or SPIRAM (default: the board's default)",
        "dry_run": "print the commands (and the ESP8266 irom0 budget) without running them",
        "jobs": "parallel make jobs inside the container (default: number of CPUs)",
    }
)
@user_errors
def build(c, board, variant=None, dry_run=False, jobs=None):
    """Build firmware with the micrOS core frozen in (Docker), or the sim's ROMFS image, into build/<board>/."""
    from . import build as b

    b.build(board, variant, dry_run, jobs)


ns = Collection(sim, shell, bench)
ns.add_task(boards)
ns.add_task(build)
