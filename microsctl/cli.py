"""The invoke tasks. Each is a thin layer over a module of this package."""
import functools
import inspect
import re

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


def profile_key(fn):
    """For a task that talks to nodes: its --profile also gives the shell key, from
    config_profiles/<profile>.secrets.json (as invoke sim and flash put it on the node), for
    every connection the task opens (microsctl.flashing.profiles.key_profile). Never printed."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        from microsctl.flashing import profiles

        with profiles.key_profile(sig.bind(*args, **kw).arguments.get("profile")):
            return fn(*args, **kw)

    return wrapper


KEY_PROFILE_HELP = ("the profile the node was flashed or simulated with: its config_profiles/<profile>.secrets.json "
                    "also gives the shell key (never printed)")


def numbers(**convert):
    """Options that take numbers, checked by the task: with an int default invoke would convert
    the text while parsing, and a typo ("--baud abc") would end in a ValueError traceback.
    `convert` maps a parameter to a checker (value, flag) -> value; None is left as it is.
    The parameters are kept on the function as `.numbers` (tests/test_cli.py checks them all)."""

    def deco(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kw):
            bound = sig.bind(*args, **kw)
            bound.apply_defaults()
            for name, check in convert.items():
                if bound.arguments[name] is not None:
                    bound.arguments[name] = check(bound.arguments[name], "--" + name.replace("_", "-"))
            return fn(*bound.args, **bound.kwargs)

        wrapper.numbers = tuple(convert)
        return wrapper

    return deco


def whole(lo, hi, what):
    """A checker for a whole number lo..hi."""

    def check(value, flag):
        text = str(value).strip()
        if not (text.isdigit() and lo <= int(text) <= hi):
            raise MicrosError(f"{flag} takes {what}, not {value!r}")
        return int(text)

    return check


TCP_PORT = whole(1, 65535, "a TCP port number (1..65535)")
BAUD = whole(300, 5_000_000, "a baud rate such as 460800 or 115200")
JOBS = whole(1, 1024, "a number of parallel jobs, such as 4")


def loopback(value, flag):
    """A loopback IPv4 address (127.0.0.0/8): the addresses a virtual node can bind here."""
    import ipaddress

    try:
        ip = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise MicrosError(f"{flag} takes a loopback address such as 127.0.0.2 (127.0.0.0/8), not {value!r}")
    return str(ip)


def heap_size(value, flag):
    """MicroPython's -X heapsize=<n>[w][K|M] (ports/unix/main.c), decimal: 38k, 128k, 2M."""
    if not re.fullmatch(r"[1-9][0-9]*w?[kKmM]?", str(value).strip()):
        raise MicrosError(f"{flag} takes a heap size such as 38k, 128k or 2M, not {value!r}")
    return str(value).strip()


def print_table(head, rows):
    """Headed columns: ruled on a terminal (long cells fold, never cut), plain when piped."""
    from rich import box
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    out = Console(highlight=False)
    tty = out.is_terminal
    cols = [Column(h, no_wrap=not i, overflow="fold") for i, h in enumerate(head)]  # names stay whole
    table = Table(*cols, box=box.SIMPLE_HEAD if tty else None,
                  pad_edge=False, header_style="bold" if tty else "")
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))  # Text: a '[' in a cell is not markup
    if tty:
        out.print(table)
        return
    out = Console(highlight=False, width=1000, no_color=True)  # piped: one line per row, never wrapped
    with out.capture() as cap:
        out.print(table)
    print("\n".join(line.rstrip() for line in cap.get().splitlines()))


@task(
    help={
        "profile": "config profile from config_profiles/ (default: default)",
        "port": "TCP port of the shell (default: the profile's socport, 9008)",
        "host": "loopback address the node's shell binds, its address on the virtual LAN "
        "(default 127.0.0.1); nodes on 127.0.0.2, 127.0.0.3, ... share one port as a LAN's nodes do",
        "heap": "MicroPython heap size, e.g. 38k for an ESP8266-sized heap (default: 128k, ESP32-like)",
        "set": "KEY=VALUE config setting on top of the profile; repeatable",
        "node": "node name; its filesystem lives in build/sim/<node>/ (default: the profile name)",
        "fresh": "start from a new filesystem instead of the node's kept one",
        "flash": "boot from the filesystem of this flash image (invoke flash --board sim --port PATH); "
        "flashed from the profile if it does not exist",
        "romfs": "run the core from a ROMFS image (as invoke build --board sim makes it), "
        "as a board runs frozen code",
        "board": "board to impersonate: esp8266, esp32, esp32c3 or esp32s3 (its pins, PWM, clock, WLAN and "
        "limits as MicroPython v1.28.0 has them, see docs/boards.md; default: the plain virtual board)",
        "micropython": "MicroPython binary to run the node on (default: $MICROS_MICROPYTHON, "
        "else the unix port installed with this package)",
        "frozen": "run the core frozen into that binary (invoke build --board unix makes one) "
        "instead of this tree's core",
        "ota": "boot from a flash image with the ESP32 OTA layout (two app slots, otadata, vfs; docs/updates.md) "
        "for firmware updates with invoke ota --firmware: --flash PATH, default build/sim/<node>-ota.img, "
        "made with this tree's core in ota_0 if it does not exist (or with --fresh)",
        "mqtt": "connect the node to an MQTT broker: --mqtt mqtt://[user:password@]host:port (mqtts:// for TLS); "
        "--mqtt alone starts a Mosquitto, else amqtt, on 127.0.0.1 for the trial (docs/mqtt.md)",
    },
    iterable=["set"],
    optional=["mqtt"],
)
@user_errors
@numbers(port=TCP_PORT, heap=heap_size)
def sim(c, profile="default", port=None, heap="128k", set=None, node=None, fresh=False, flash=None, romfs=False,
        board=None, host="127.0.0.1", micropython=None, frozen=False, mqtt=None, ota=False):
    """Boot a virtual micrOS node in the foreground (Ctrl-C stops it)."""
    from microsctl.flashing import profiles
    from microsctl.node.sim import SimNode, check_port_free, frozen_core
    from microsctl.run import micropython as find_micropython

    host = loopback(host, "--host")
    prof = profiles.load(profile)
    exe = find_micropython(micropython)
    has_core = frozen_core(exe)
    if frozen and romfs:
        raise Exit("error: --frozen and --romfs each choose the core: give one of them", code=1)
    if frozen and not has_core:
        raise Exit(f"error: {exe} has no micrOS frozen in: build one with 'invoke build --board unix'", code=1)
    if has_core and not frozen:  # never shadowed silently: the boot log says which core runs
        print(f"[sim] {exe} has micrOS {has_core} frozen in; "
              "this tree's core runs ahead of it (--frozen runs that one)")
    if mqtt:  # the broker's settings on top (microsctl/mqtt/sim.py); a --mqtt alone broker starts at run
        from microsctl.mqtt import sim as mqttsim

        broker, extra = mqttsim.settings(mqtt)
        set = list(set or []) + extra
    if ota:  # the ESP32 OTA layout (microsctl/node/simota.py)
        from microsctl.node import simota

        flash, fresh = simota.prepare(flash, node or profile, profile, set, fresh), False
    image = None
    if romfs:  # rebuilt each time (under a second), so it always holds the current core
        from microsctl.firmware import boards
        from microsctl.firmware import build

        image = build.build_sim(boards.get("sim"))
    n = SimNode(node or profile, heap=heap, flash=flash, romfs=image, board=board, host=host, frozen=frozen,
                micropython=exe)
    kept = flash and n.flash.exists() and not fresh
    cfg = n.prepare(profile, set, port, fresh)
    check_port_free(cfg["socport"], host)
    if not n.board.is_virtual:
        print(f"[sim] node {n.name}: impersonates {n.board.name} ({n.board.chip})")
    if flash:
        from microsctl.flashing import imagemeta

        print(f"[sim] node {n.name}: filesystem in the flash image {n.flash}, {imagemeta.describe(n.flash)}")
        if kept and profile != "default":
            print(f"[sim] --profile {profile} is not used: the image keeps its own settings (--fresh flashes it anew)")
    else:
        print(f"[sim] node {n.name}: profile {profile}, filesystem {n.fs}")
    there = f"--port {cfg['socport']}" + (f" --host {host}" if host != "127.0.0.1" else "")
    if cfg.get("auth") and cfg.get("authkey", "n/a") != "n/a":  # the key itself is never printed
        print("[sim] auth on: the host tools answer with the key from MICROS_AUTHKEY or secrets.json")
        if profiles.authkey() != cfg["authkey"]:  # only the profile's secrets file has it
            there += f" --profile {profile}"
    print(f"[sim] shell: invoke shell {there}")
    for ex in prof["examples"]:
        print(f"[sim]   try: invoke shell {there} -c {ex!r}")
    if mqtt:
        mqttsim.describe(cfg, broker)
    try:
        rc = mqttsim.run(n, broker) if mqtt else n.run()
    except KeyboardInterrupt:  # the node got the Ctrl-C too and says so
        n.stop()
        rc = 0
    if rc:
        raise Exit(f"error: the virtual node exited with status {rc} (see its output above)", code=1)


@task(
    help={
        "port": "TCP port of the node's shell (default 9008, or the cached one with --dev)",
        "host": "node address (default 127.0.0.1)",
        "dev": "the node by name (devfid), hardware id or address, through the device cache "
        "(invoke scan fills it), then <name>.local over mDNS",
        "command": "run this command (several: one per line, or joined with <a> as the original) and exit; "
        "without it, an interactive shell "
        "(history kept across sessions, lines setting a password left out; Ctrl-C leaves with status 130, "
        "a node that goes away ends it with status 1)",
        "profile": KEY_PROFILE_HELP,
    },
    # invoke has no optional positional arguments (pyinvoke/invoke#159), so the
    # one-shot command is the flag -c/--command; without it the shell is interactive.
    positional=[],
)
@user_errors
@profile_key
@numbers(port=TCP_PORT)
def shell(c, port=None, host="127.0.0.1", command=None, dev=None, profile=None):
    """Talk to a node's shell: interactively, or one command and exit (status 1 on an error reply).
    A node with auth on is answered with the key from MICROS_AUTHKEY, secrets.json or, with
    --profile, config_profiles/<profile>.secrets.json."""
    from microsctl.node import client

    if dev:
        from microsctl.fleet import cache

        host, port, _ = cache.resolve(dev, port)
    port = port or 9008
    if not command:
        rc = client.interactive(int(port), host)
    else:
        lines = [part for ln in command.splitlines() for part in ln.split("<a>") if part.strip()]
        rc = client.one_shot(int(port), lines, host)
    if rc:
        raise Exit(code=rc)


@task(
    help={
        "only": "run just this section (see microsctl/bench/__init__.py SECTIONS), e.g. frozen",
        "quick": "fewer iterations, for a smoke run",
        "micropython": "MicroPython binary to measure on (default: $MICROS_MICROPYTHON, else the installed "
        "unix port); one with micrOS frozen in (shared/tools/unix-frozen.sh) adds the frozen core's heap "
        "figures, and is what --only frozen measures (skipped without one; docs/ram.md)",
        "original_src": "with --only frozen: also measure the original micrOS v0.4 from this upstream tree "
        "(a checkout of BxNxM/micrOS at v0.4.0-0), frozen into a binary built like --micropython's "
        "(its MicroPython tree, word size, stand-ins): the like-for-like table (docs/ram.md)",
    }
)
@user_errors
def bench(c, only=None, quick=False, micropython=None, original_src=None):
    """Measure speed and memory; print the figures and record them in docs/benchmarks.md."""
    import os

    from microsctl import bench as b
    from microsctl import run

    if micropython:  # every node and helper of the run uses it
        os.environ[run.MICROPYTHON_ENV] = run.micropython(micropython)
    if original_src:
        from microsctl.bench import original

        os.environ[original.ENV] = str(original.source(original_src))
    b.run(only, quick)


@task
@user_errors
def boards(c):
    """List the boards (boards/*/board.json): chip, flash, firmware and filesystem offsets."""
    from microsctl.firmware import boards as db

    print_table(*db.table())


@task(
    help={
        "board": "board to build for (required; invoke boards lists them): esp8266, esp32, esp32-c3, esp32-s3, sim",
        "variant": "MicroPython board variant, e.g. FLASH_1M, SPIRAM or ota (any case; invoke boards lists them; "
        "default: the board's default)",
        "dry_run": "print the commands (and the ESP8266 irom0 budget) without running them",
        "jobs": "parallel make jobs inside the container (default: number of CPUs)",
    }
)
@user_errors
@numbers(jobs=JOBS)
def build(c, board=None, variant=None, dry_run=False, jobs=None):
    """Build firmware with the micrOS core frozen in (Docker), or the sim's ROMFS image, into build/<board>/."""
    from microsctl.firmware import build as b

    b.build(board, variant, dry_run, jobs)


_FLASH_HELP = {
    "board": "board (required; invoke boards lists them), e.g. esp32, esp32-c3, esp8266, sim",
    "port": "serial port (/dev/ttyUSB0, COM3, socket://host:port); for --board sim the flash image file "
    "(default build/sim/flash.img)",
    "profile": "config profile from config_profiles/ (invoke profiles)",
    "set": "KEY=VALUE per-device setting on top of the profile; repeatable (not for secrets)",
    "device": "JSON file of per-device settings, applied before --set",
    "baud": "baud rate of the write (default 460800; a failed fast write is retried at 115200)",
    "flash_size": "the chip's flash size, e.g. 4MB, 8MB, 16MB (default: detect, esptool asks the chip); "
    "it decides where the firmware puts the filesystem, and goes into an ESP8266's image header",
    "variant": "board variant, e.g. ota (ESP32_GENERIC's OTA layout: two app slots, filesystem from 0x310000; "
    "invoke boards lists them; default: the board's default)",
}


@task(help={"name": "show this profile's merged settings (secrets masked)", "set": _FLASH_HELP["set"],
            "device": _FLASH_HELP["device"]}, iterable=["set"])
@user_errors
def profiles(c, name="", set=None, device=None):
    """List the config profiles; with --name NAME, show one merged with per-device values and secrets (masked)."""
    from microsctl.flashing import profiles as p

    if name:
        print(p.describe(name, set, device))
    else:
        print_table(*p.table())


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
@numbers(baud=BAUD)
def flash(c, board=None, port="", profile="default", firmware=None, prebuilt=None, erase=False, baud="460800",
          set=None, device=None, index=None, flash_size="detect", variant=None):
    """Flash firmware and a filesystem holding the node's settings, in one esptool connection."""
    from microsctl.firmware import boards as db
    from microsctl.flashing import flash as f

    board = db.get(board, variant)
    res = f.flash(board, port or None, profile, firmware, prebuilt, erase, int(baud), set, device, index,
                  flash_size=flash_size)
    print(f"[flash] done: profile {profile}, devfid {res['config']['devfid']}, shell port {res['config']['socport']}")


@task(help={**_FLASH_HELP, "no_backup": "do not read the node's current config back first (nothing is carried forward)",
            "force": "write even when the node's flash could not be read back (its config is then lost)"},
      iterable=["set"])
@user_errors
@numbers(baud=BAUD)
def provision(c, board=None, port="", profile="default", set=None, device=None, baud="460800", no_backup=False,
              force=False, flash_size="detect", variant=None):
    """Write only the settings (the filesystem region); the node's old config is kept in build/backups/
    and its own values (hwuid, devip, ...) and settings the profile does not name are carried forward."""
    from microsctl.firmware import boards as db
    from microsctl.flashing import flash as f

    board = db.get(board, variant)
    res = f.provision(board, port or None, profile, int(baud), set, device, read_back=not no_backup, force=force,
                      flash_size=flash_size)
    print(f"[provision] done: profile {profile}, devfid {res['config']['devfid']}; the node uses it after a reset")


@task(
    help={
        "board": _FLASH_HELP["board"],
        "port": _FLASH_HELP["port"],
        "firmware": "new firmware image (default: the one invoke build made)",
        "prebuilt": "the micrOS release image for the board (sha256-verified like invoke fetch); optionally "
        "this micrOS VERSION (default: the newest)",
        "index": "release index URL or path for --prebuilt (default: $MICROS_INDEX, else the latest GitHub release)",
        "baud": _FLASH_HELP["baud"],
        "flash_size": _FLASH_HELP["flash_size"],
        "force": "write the firmware even when the node's flash could not be read back (its settings are not "
        "backed up, and not carried if the layout changed)",
        "variant": "the board variant the new firmware was built for, e.g. OTA (default: the board's default); "
        "a variant with another partition table moves the node's files to its filesystem",
    },
    optional=["prebuilt"],
)
@user_errors
@numbers(baud=BAUD)
def update(c, board=None, port="", firmware=None, prebuilt=None, index=None, baud="460800", flash_size="detect",
           force=False, variant=None):
    """Update the firmware, keeping the node's settings and files: the firmware region alone when the node's
    filesystem mounts with the new firmware, else its files carried into a new image; config kept in build/backups/."""
    from microsctl.firmware import boards as db
    from microsctl.flashing import update as u

    res = u.update(db.get(board, variant), port or None, firmware, prebuilt, int(baud), index, flash_size, force=force)
    how = {"keep": "firmware written, settings untouched", "carry": "firmware written, settings and files carried "
           "into the new layout", "nothing": "firmware written (no settings on the node to keep)"}[res["mode"]]
    print(f"[update] done: {how}")


@task(
    help={
        "port": "TCP port of the node's shell (default 9008, or the cached one with --dev)",
        "host": "node address (default 127.0.0.1)",
        "dev": "the node by name (devfid), hardware id or address, through the device cache (invoke scan)",
        "all": "every node in the device cache (files, or with --firmware the firmware): the first alone as a "
        "canary, then the rest in parallel waves (--wave); no new wave starts after a failure; prints each node's "
        "version before and after",
        "wave": "with --all: how many nodes are updated at once after the canary (default 4)",
        "files": "a file to send: LM_*.py is compiled to .mpy first, other files go as they are; repeatable",
        "profile": "also send this profile's Load Modules that are not frozen in the core; its "
        "config_profiles/<profile>.secrets.json also gives the shell key (never printed; with --firmware only that)",
        "board": "the node's board, for .mpy compiled with its native arch (default: bytecode only, any board)",
        "timeout": "seconds to wait for the node to come back after its restart (default 60)",
        "set": "KEY=VALUE setting written with the files, all or nothing; repeatable",
        "firmware": "update the node's firmware instead (ESP32 family, OTA layout): this image, or with no PATH "
        "the one invoke build made; streamed into the idle app slot, sha256-checked before the switch, kept only "
        "if it boots healthy (else the node rolls back)",
        "prebuilt": "with --firmware: the micrOS release image for the board; optionally this VERSION",
        "index": "release index URL or path for --prebuilt (default: $MICROS_INDEX, else the latest GitHub release)",
        "variant": "with --firmware: the board variant the image was built for (e.g. OTA)",
    },
    iterable=["files", "set"],
    optional=["firmware", "prebuilt"],
)
@user_errors
@profile_key
@numbers(port=TCP_PORT, timeout=whole(1, 3600, "seconds, such as 60"),
         wave=whole(1, 1000, "a number of nodes, such as 4"))
def ota(c, port=None, host="127.0.0.1", files=None, profile=None, board=None, timeout="60", set=None, dev=None,
        all=False, wave=None, firmware=None, prebuilt=None, index=None, variant=None):
    """Update files and settings on running nodes over their shell, all or nothing: sha256-checked, moved into
    place only when everything arrived, then the node restarts and is checked to run what was sent.
    With --firmware: the node's firmware (ESP32 family), with rollback."""
    from microsctl.node import ota as o

    if dev and all:
        raise MicrosError("--dev and --all exclude each other: pick one")
    if wave is not None and not all:
        raise MicrosError("--wave sizes the waves of --all: give --all too, or leave --wave out")
    if (firmware is not None or prebuilt is not None) and all:
        if files or set:
            raise MicrosError("--firmware updates the firmware alone: send files or settings in another run")
        from microsctl.fleet import cache as devcache
        from microsctl.fleet import waves

        targets = [(d.get("fuid") or u, d["host"], int(d["port"])) for u, d in devcache.Cache().rows()]
        if not targets:
            raise MicrosError("the device cache is empty: run 'invoke scan' first")
        done, ok = waves.firmware_all(targets, firmware, board, prebuilt, index, int(timeout), variant,
                                      wave or waves.DEFAULT_WAVE)
        print_table(waves.COLUMNS, [node.row() for node in done])
        if not ok:
            raise MicrosError(waves.summary(done))
        return
    if firmware is not None or prebuilt is not None:
        if files or set:
            raise MicrosError("--firmware updates one node's firmware alone: send files or settings in another run")
        from microsctl.node import fwota

        if dev:
            from microsctl.fleet import cache as devcache

            host, port, _ = devcache.resolve(dev, port)
        res = fwota.firmware_ota(int(port or 9008), host, firmware, board, prebuilt, index, int(timeout), variant)
        print(f"[ota] done: {res['bytes']} bytes into {res['slot']} in {res['seconds']:.2f} s; the node runs "
              f"{res['after']['running']}, micrOS {res['after']['version']}")
        return
    if all:
        from microsctl.fleet import cache as devcache

        rows = devcache.Cache().rows()
        if not rows:
            raise MicrosError("the device cache is empty: run 'invoke scan' first")
        from microsctl.fleet import waves

        targets = [(d.get("fuid") or u, d["host"], int(d["port"])) for u, d in rows]
        done, ok = waves.ota_all(targets, files, board, profile, int(timeout), set, wave or waves.DEFAULT_WAVE)
        print_table(waves.COLUMNS, [node.row() for node in done])
        if not ok:
            raise MicrosError(waves.summary(done))
        return
    if dev:
        from microsctl.fleet import cache as devcache

        host, port, _ = devcache.resolve(dev, port)
    res = o.ota(int(port or 9008), host, files, board, profile, int(timeout), set)
    what = res["files"] + [f"setting {k}" for k in res["settings"]]
    print(f"[ota] done: {', '.join(what)} ({res['bytes']} bytes, {res['seconds']:.1f} s)")


@task(help={"board": _FLASH_HELP["board"], "version": "micrOS release, e.g. 0.1.0 (default: the newest in the index)",
            "index": "release index URL or path (default: $MICROS_INDEX, else the project's latest GitHub release)"})
@user_errors
def fetch(c, board=None, version=None, index=None):
    """Download the micrOS firmware image of a release into the user's cache ($MICROS_CACHE overrides), sha256-verified."""
    from microsctl.firmware import boards as db
    from microsctl.flashing import fetch as f

    path, entry = f.fetch(db.get(board), version, index)
    print(f"{entry['board']} {entry['version']}: {path}")


@task
@user_errors
def lm_manual(c):
    """Write the Load Module manual from the sources: sfuncman.json and docs/load-modules.md."""
    from microsctl.firmware import lmdoc

    for path in lmdoc.write():
        print(f"wrote {path}")
@task(help={"mqtt": "the broker, mqtt://[user:password@]host:port (required)",
            "prefix": "the nodes' topic prefix, their mqttpfx setting (default: micros)"})
@user_errors
def mqtt_status(c, mqtt=None, prefix="micros"):
    """List the nodes on an MQTT broker from their retained status and telemetry."""
    from microsctl.mqtt import client

    if not mqtt:
        raise Exit("error: give the broker: invoke mqtt-status --mqtt mqtt://host:port", code=1)
    rows = client.status_rows(mqtt, prefix)
    if not rows:
        print(f"no nodes under {prefix}/ on {mqtt.split('@')[-1]}")
        return
    print_table(("node", "status", "uptime s", "free heap B", "RSSI dBm"), rows)


ns = Collection(sim, shell, bench)
ns.add_task(mqtt_status)
ns.add_task(profiles)
ns.add_task(flash)
ns.add_task(provision)
ns.add_task(update)
ns.add_task(ota)
ns.add_task(fetch)
ns.add_task(boards)
ns.add_task(build)


# -- fleet: many nodes (microsctl/fleet) ---------------------------------------------------------

_FLEET_PORT = "shell port to probe (default 9008)"


@task(help={"count": "how many virtual nodes (fleet01, fleet02, ... on 127.0.0.2, 127.0.0.3, ...)",
            "port": "the shell port all of them listen on (default 9008)",
            "first": "address of the first node (default 127.0.0.2); the others follow it",
            "profile": "config profile for every node (default: default)",
            "heap": "MicroPython heap of each node (default 128k)",
            "fresh": "start every node from a new filesystem",
            "stop": "stop the running virtual fleet instead"})
@user_errors
@numbers(count=whole(1, 1000, "a number of nodes, such as 8"), port=TCP_PORT, heap=heap_size)
def fleet_sim(c, count=None, port="9008", first="127.0.0.2", profile="default", heap="128k", fresh=False,
              stop=False):
    """Start N virtual nodes in the background on 127.0.0.2.. (one port, many addresses, as a LAN), or --stop them."""
    from microsctl.fleet import simfleet

    if stop:
        n = simfleet.stop()
        print(f"[fleet-sim] stopped {n} virtual nodes" if n else "[fleet-sim] no virtual fleet was running")
        return
    if count is None:
        raise MicrosError("--count N is required (or --stop)")
    st = simfleet.start(count, int(port), loopback(first, "--first"), profile, heap, fresh=fresh)
    nodes = st["nodes"]
    print(f"[fleet-sim] {len(nodes)} nodes up ({nodes[0]['name']} on {nodes[0]['host']} .. "
          f"{nodes[-1]['name']} on {nodes[-1]['host']}), port {port}; log {st['log']}")
    print(f"[fleet-sim] find them: invoke scan --subnet 127.0.0.0/24 --port {port}; stop: invoke fleet-sim --stop")


@task(help={"subnet": "network to probe, e.g. 192.168.1.0/24 (default: this machine's LAN, unless --hosts is given)",
            "hosts": "file of addresses to probe, one a line (host or host:port, # comments)",
            "port": _FLEET_PORT,
            "timeout": "seconds to wait for each address (default 0.5)",
            "mdns": "seconds to listen for mDNS announcements (default 1.5; 0 skips mDNS)",
            "import_original": "first import the original micrOS device cache (device_conn_cache.json) from this path",
            "json": "print the nodes found as JSON",
            "profile": KEY_PROFILE_HELP})
@user_errors
@profile_key
@numbers(port=TCP_PORT)
def scan(c, subnet=None, hosts=None, port="9008", timeout="0.5", mdns="1.5", import_original=None, json=False,
         profile=None):
    """Find micrOS nodes (parallel probes, hello, mDNS) and keep them in the device cache."""
    import json as js

    from microsctl.fleet import cache as devcache
    from microsctl.fleet import scan as s

    cache = devcache.Cache()
    if import_original:
        n = cache.import_original(import_original)
        cache.save()
        print(f"[scan] imported {n} nodes from {import_original}")
        if not (subnet or hosts):
            return
    found = s.scan(subnet, hosts, int(port), seconds(timeout, "--timeout"), seconds(mdns, "--mdns"), cache=cache)
    if json:
        print(js.dumps(found, indent=1))
    elif found:
        print_table(("UID", "FUID", "IP", "STATUS"),
                    [(f["uid"] or "-", f["fuid"] or "-", f"{f['host']}:{f['port']}", f["status"]) for f in found])
    import sys

    print(f"[scan] {len(found)} nodes found; device cache {cache.path}", file=sys.stderr if json else sys.stdout)


def seconds(value, flag):
    try:
        v = float(value)
    except ValueError:
        v = -1
    if not 0 <= v <= 600:
        raise MicrosError(f"{flag} takes seconds such as 0.5, not {value!r}")
    return v


@task(help={"dev": "one node: name (devfid), hardware id or address",
            "all": "every node in the device cache (the default)",
            "json": "print JSON instead of the table",
            "timeout": "seconds to wait for each node (default 2)",
            "mqtt": "list the nodes on this MQTT broker instead, mqtt://[user:password@]host:port, from their "
            "retained status and telemetry (docs/mqtt.md)",
            "prefix": "with --mqtt: the nodes' topic prefix, their mqttpfx (default: micros)",
            "profile": KEY_PROFILE_HELP})
@user_errors
@profile_key
def status(c, dev=None, all=False, json=False, timeout="2", mqtt=None, prefix="micros", profile=None):
    """The nodes at a glance, asked in parallel: UID, FUID, IP, STATUS, MEMFREE, VERSION, UPTIME, RSSI."""
    if mqtt:
        return mqtt_status(c, mqtt, prefix)
    from microsctl.fleet import status as st

    rows = st.status(dev, all, timeout=seconds(timeout, "--timeout"))
    if json:
        print(st.as_json(rows))
    else:
        print_table(st.COLUMNS, st.table_rows(rows))


@task(help={"dev": "one node: name (devfid), hardware id or address",
            "all": "every online node in the device cache",
            "no_secrets": "leave the secrets out (by default the host's known secrets go in; the file is 0600)",
            "profile": KEY_PROFILE_HELP})
@user_errors
@profile_key
def backup(c, dev=None, all=False, no_secrets=False, profile=None):
    """Archive a node's settings with a timestamp in the user's data folder (files readable by you alone)."""
    from microsctl.fleet import backup as b
    from microsctl.fleet import cache as devcache

    if not (dev or all):
        raise MicrosError("say which node: --dev NAME, or --all")
    cache = devcache.Cache()
    names = [(dev, dev)] if dev else [(u, d.get("fuid") or u) for u, d in cache.rows()]
    failed = 0
    for key, name in names:
        try:
            path, n, secret = b.backup(key, not no_secrets, cache)
        except MicrosError as err:
            if dev:
                raise
            failed += 1
            print(f"[backup] {name}: {err}")
            continue
        print(f"[backup] {name}: {n} settings" + (f" + {', '.join(secret)}" if secret else ", no secrets") + f" -> {path}")
    if failed:
        raise MicrosError(f"{failed} of {len(names)} nodes were not backed up (see above)")


@task(help={"dev": "the node: name (devfid), hardware id or address (required)",
            "from_": "backup file to restore (default: the node's newest backup)",
            "profile": KEY_PROFILE_HELP})
@user_errors
@profile_key
def restore(c, dev=None, from_=None, profile=None):
    """Write a node's backed-up settings back through the shell (conf mode); only what differs is written."""
    from microsctl.fleet import backup as b

    if not dev:
        raise MicrosError("--dev NAME is required")
    path, written, later = b.restore(dev, from_)
    print(f"[restore] {dev}: {len(written)} settings written from {path}" + (f": {', '.join(written)}" if written else ""))
    if later:
        print(f"[restore] effective after a reboot: {', '.join(later)}; reboot with: invoke shell --dev {dev} -c reboot")


ns.add_task(fleet_sim)
ns.add_task(scan)
ns.add_task(status)
ns.add_task(backup)
ns.add_task(restore)
ns.add_task(lm_manual)
