"""The invoke tasks. Each is a thin layer over a module of this package."""
import functools

from invoke import Collection, Exit, task

from microsctl import MicrosError


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
        "flash": "boot from the filesystem of this flash image (invoke flash --board sim --port PATH); "
        "flashed from the profile if it does not exist",
        "romfs": "run the core from a ROMFS image (as invoke build --board sim makes it), "
        "as a board runs frozen code",
    },
    iterable=["set"],
)
@user_errors
def sim(c, profile="default", port=None, heap="128k", set=None, node=None, fresh=False, flash=None, romfs=False):
    """Boot a virtual micrOS node in the foreground (Ctrl-C stops it)."""
    from microsctl.flashing import profiles
    from microsctl.node.sim import SimNode

    prof = profiles.load(profile)
    image = None
    if romfs:  # rebuilt each time (under a second), so it always holds the current core
        from microsctl.firmware import boards
        from microsctl.firmware import build

        image = build.build_sim(boards.get("sim"))
    n = SimNode(node or profile, heap=heap, flash=flash, romfs=image)
    cfg = n.prepare(profile, set, port, fresh)
    if flash:
        print(f"[sim] node {n.name}: filesystem in the flash image {n.flash}")
    else:
        print(f"[sim] node {n.name}: profile {profile}, filesystem {n.fs}")
    print(f"[sim] shell: invoke shell --port {cfg['socport']}")
    for ex in prof["examples"]:
        print(f"[sim]   try: invoke shell --port {cfg['socport']} -c {ex!r}")
    try:
        rc = n.run()
    except KeyboardInterrupt:  # the node got the Ctrl-C too and says so
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
    from microsctl.node import client

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
    from microsctl import bench as b

    b.run(only, quick)


@task
@user_errors
def boards(c):
    """List the boards (boards/*/board.json): chip, flash, firmware and filesystem offsets."""
    from microsctl.firmware import boards as db

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
    from microsctl.firmware import build as b

    b.build(board, variant, dry_run, jobs)


_FLASH_HELP = {
    "board": "board name or alias (invoke boards), e.g. esp32, esp8266, sim",
    "port": "serial port (/dev/ttyUSB0, COM3, socket://host:port); for --board sim the flash image file "
    "(default build/sim/flash.img)",
    "profile": "config profile from config_profiles/ (invoke profiles)",
    "set": "KEY=VALUE per-device setting on top of the profile; repeatable (not for secrets)",
    "device": "JSON file of per-device settings, applied before --set",
    "baud": "baud rate of the write (default 460800; a failed fast write is retried at 115200)",
}


@task(help={"name": "show this profile's merged settings (secrets masked)", "set": _FLASH_HELP["set"],
            "device": _FLASH_HELP["device"]}, iterable=["set"])
@user_errors
def profiles(c, name="", set=None, device=None):
    """List the config profiles; with --name NAME, show one merged with per-device values and secrets (masked)."""
    from microsctl.flashing import profiles as p

    print(p.describe(name, set, device) if name else p.listing())


@task(
    help={
        **_FLASH_HELP,
        "firmware": "firmware image to write at the board's offset (default: the one invoke build made)",
        "prebuilt": "flash the micrOS release image (core frozen in) for the board, downloaded and "
        "sha256-verified like invoke fetch; optionally this micrOS VERSION (default: the newest)",
        "erase": "erase the whole flash first",
        "index": "release index URL or path for --prebuilt (default: $MICROS_INDEX, else the project's "
        "latest GitHub release)",
    },
    iterable=["set"],
    optional=["prebuilt"],
)
@user_errors
def flash(c, board, port="", profile="default", firmware=None, prebuilt=None, erase=False, baud=460800,
          set=None, device=None, index=None):
    """Flash firmware and a filesystem holding the node's settings, in one esptool connection."""
    from microsctl.flashing import flash as f

    res = f.flash(board, port or None, profile, firmware, prebuilt, erase, int(baud), set, device, index)
    print(f"[flash] done: profile {profile}, devfid {res['config']['devfid']}, shell port {res['config']['socport']}")


@task(help={**_FLASH_HELP, "no_backup": "do not read the node's current config back first (nothing is carried forward)",
            "force": "write even when the node's flash could not be read back (its config is then lost)"},
      iterable=["set"])
@user_errors
def provision(c, board, port="", profile="default", set=None, device=None, baud=460800, no_backup=False, force=False):
    """Write only the settings (the filesystem region); the node's old config is kept in build/backups/
    and its own values (hwuid, devip, ...) and settings the profile does not name are carried forward."""
    from microsctl.flashing import flash as f

    res = f.provision(board, port or None, profile, int(baud), set, device, read_back=not no_backup, force=force)
    print(f"[provision] done: profile {profile}, devfid {res['config']['devfid']}; the node uses it after a reset")


@task(help={"board": _FLASH_HELP["board"], "version": "micrOS release, e.g. 0.1.0 (default: the newest in the index)",
            "index": "release index URL or path (default: $MICROS_INDEX, else the project's latest GitHub release)"})
@user_errors
def fetch(c, board, version=None, index=None):
    """Download the micrOS firmware image of a release into the user's cache ($MICROS_CACHE overrides), sha256-verified."""
    from microsctl.firmware import boards as db
    from microsctl.flashing import fetch as f

    path, entry = f.fetch(db.get(board), version, index)
    print(f"{entry['board']} {entry['version']}: {path}")


ns = Collection(sim, shell, bench)
ns.add_task(profiles)
ns.add_task(flash)
ns.add_task(provision)
ns.add_task(fetch)
ns.add_task(boards)
ns.add_task(build)
