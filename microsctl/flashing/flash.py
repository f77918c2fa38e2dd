"""Flash a board through esptool v5's own entry point, with the node's settings injected.

`flash`: firmware at the board's offset and the filesystem image (settings, main.py,
Load Modules) at the board's filesystem offset, in one esptool connection; esptool
MD5-verifies each write (all chips with the flasher stub; not the ESP8266 ROM loader).
`provision`: just the filesystem region; the node's current node_config.json is read
back first, kept under build/backups/ and carried forward (readback.py); a flash that
cannot be read stops it before anything is written, unless --force.
Firmware files and settings are checked before any connection (checks.py).
The virtual board `sim` is a flash target too: its "port" is a flash image file.

Every offset and size comes from the board database (boards.py). The esptool argv is
built by pure functions, printed, then run; a fast write that fails is retried once at
115200 baud.
"""
import contextlib
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

from microsctl import BUILD, MicrosError
from microsctl.firmware import boards
from microsctl.flashing import checks
from microsctl.flashing import fsimage
from microsctl.flashing import geometry
from microsctl.flashing import imagemeta
from microsctl.flashing import layout
from microsctl.flashing import profiles
from microsctl.flashing import readback

ROM_BAUD = 115200
FAST_BAUD = 460800
BACKUPS = BUILD / "backups"
SIM_FLASH = BUILD / "sim" / "flash.img"


# -- pure argv builders ----------------------------------------------------

def write_argv(board, port, parts, baud=FAST_BAUD, erase=False, before="default-reset", after="hard-reset",
               flash_size=None):
    """esptool argv writing [(offset, path), ...] in one connection; `flash_size` goes into the
    image header at the bootloader offset (esptool v5 keeps the header when it is not given)."""
    argv = ["--chip", board.chip, "--port", str(port), "--baud", str(baud),
            "--before", before, "--after", after, "write-flash"]
    if flash_size:
        argv += ["--flash-size", flash_size]
    if erase:
        argv.append("--erase-all")
    for offset, path in sorted(parts):
        argv += [f"{offset:#x}", str(path)]
    return argv


def with_option(argv, flag, value):
    """argv with one global option's value replaced."""
    out = list(argv)
    out[out.index(flag) + 1] = str(value)
    return out


def retry_argv(argv):
    """The retry of a failed fast write: 115200 baud, from a fresh reset into the ROM loader
    (a stub left at the fast rate would not answer at 115200)."""
    return with_option(with_option(argv, "--baud", ROM_BAUD), "--before", "default-reset")


# -- running esptool -------------------------------------------------------

def esptool_main(argv):
    """Print the command, run esptool.main(argv); MicrosError with esptool's reason on failure."""
    import esptool
    import serial

    print("$ esptool " + shlex.join(argv), file=sys.stderr, flush=True)
    try:
        esptool.main(list(argv))
    except esptool.FatalError as err:
        raise checks.wrong_chip(err, argv[argv.index("--port") + 1]) or MicrosError(_one_line(err)) from err
    except serial.SerialException as err:
        raise MicrosError(f"cannot open the serial port: {_one_line(err)}") from err
    except SystemExit as err:
        if err.code not in (0, None):
            raise MicrosError(f"esptool stopped with status {err.code} (see its output above)") from err


def _one_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def run_write(argv):
    """Run a write; when a write faster than the ROM baud fails, retry once at 115200."""
    try:
        esptool_main(argv)
        return argv
    except MicrosError as err:
        if "the chip that answered" in str(err):
            raise
        baud = int(argv[argv.index("--baud") + 1])
        if baud <= ROM_BAUD or "connect" in str(err).lower():
            raise _explain(err) from err
        print(f"[flash] the write at {baud} baud failed ({err}); retrying at {ROM_BAUD}", file=sys.stderr, flush=True)
        slow = retry_argv(argv)
        try:
            esptool_main(slow)
        except MicrosError as err2:
            raise _explain(err2) from err2
        return slow


def _explain(err):
    msg = str(err)
    if "MD5" in msg or "does not match" in msg:
        return MicrosError(f"verification failed, the flash does not hold what was written ({msg}): "
                           "run again with --erase; if it persists the flash chip is worn")
    if "connect" in msg.lower():
        return MicrosError(f"{msg}: hold BOOT (GPIO0 low) while resetting the board, check the port and cable")
    return MicrosError(f"flashing failed: {msg}")


# -- images ------------------------------------------------------------------

def default_firmware(board):
    """The firmware `invoke build` made for this board (build/<board>/<firmware file>), if any."""
    from microsctl.firmware.build import out_dir

    cand = out_dir(board) / board.firmware.file
    return cand if cand.is_file() else None


def load_firmware(board, firmware):
    """The firmware file's bytes, checked for the board: not empty, fits its region, an image
    for the board's chip (flashing.checks). Used by flash and update."""
    try:
        data = Path(firmware).read_bytes()
    except OSError as err:
        raise MicrosError(f"cannot read firmware {firmware}: {err.strerror}") from err
    if not data:
        raise MicrosError(f"firmware {firmware} is empty")
    check_layout(board, firmware_size=len(data))
    checks.check_firmware(board, data, Path(firmware).name)
    return data


def check_layout(board, firmware_size=None, fs_image_size=None):
    """Refuse before writing: firmware running into the filesystem, an image larger than its partition."""
    fs = fsimage.geometry(board)
    if firmware_size is not None and board.firmware.offset + firmware_size > fs.offset:
        raise MicrosError(
            f"the firmware ({firmware_size} bytes at {board.firmware.offset:#x}) runs into the filesystem at "
            f"{fs.offset:#x} on {board.full_name}: wrong --firmware for this board?"
        )
    if fs_image_size is not None and fs_image_size > fs.size:
        raise MicrosError(f"the filesystem image ({fs_image_size} bytes) is larger than the {fs.size}-byte partition")
    if fs.end > board.flash_bytes:
        raise MicrosError(f"board {board.full_name}: the filesystem ends past its {board.flash_size} flash")


def node_image(board, profile, sets=None, device_file=None, core=None, ask=profiles.ask_secret):
    """The filesystem image with the node's settings (secrets asked for if missing)."""
    prof = profiles.load(profile)
    # the virtual board joins no real WiFi: its secrets are used if set, not required
    cfg = profiles.settings(profile, sets, device_file, secrets="found" if board.is_virtual else True, ask=ask)
    img = fsimage.image_for(board, cfg, prof["modules"], core)
    check_layout(board, fs_image_size=len(img))
    return img, cfg


@contextlib.contextmanager
def staging(board):
    """A private folder under build/flash/ for the images esptool reads; removed afterwards,
    since the filesystem image holds the node's secrets."""
    root = BUILD / "flash"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{board.full_name}-", dir=root) as tmp:
        os.chmod(tmp, 0o700)
        yield lambda name, data: fsimage.write_atomic(Path(tmp) / name, data)


# -- reading the node's current config -----------------------------------------

def read_node_config(board, port, before="default-reset"):
    """readback.NodeState of a chip's node_config.json (found, none, corrupt or unreadable).

    The session ends with the flasher stub still running at the ROM baud rate (esptool's
    no-reset-stub), so the write that follows connects with --before no-reset and skips a
    second stub upload: provisioning then moves the stub once, not twice."""
    print(f"[provision] reading {fsimage.CONFIG} from {port} (esptool read-flash, only the blocks needed)",
          file=sys.stderr, flush=True)
    return readback.from_chip(board, port, before)


# -- the virtual board: a flash image file ----------------------------------------

def sim_flash_path(port):
    return Path(port) if port else SIM_FLASH


def write_sim_flash(board, path, fs_image, firmware=None, erase=False):
    """Lay out (or update) a flash image file like the board's flash; whole file or nothing."""
    fs = fsimage.geometry(board)
    path = Path(path)
    if path.exists() and not erase:
        flash = bytearray(path.read_bytes())
        if len(flash) != board.flash_bytes:
            raise MicrosError(f"{path} is {len(flash)} bytes, not a {board.flash_size} flash image: use --erase to start over")
    else:
        flash = bytearray(b"\xff" * board.flash_bytes)
    if firmware is not None:
        off = board.firmware.offset
        flash[off : off + len(firmware)] = firmware
    flash[fs.offset : fs.offset + len(fs_image)] = fs_image
    fsimage.write_atomic(path, bytes(flash))
    return path


def update_sim_config(board, path, cfg):
    """Rewrite node_config.json inside a flash image file, keeping the node's other files."""
    fs = fsimage.geometry(geometry.for_image(board, path))
    flash = Path(path).read_bytes()
    region = fsimage.update(fs, flash[fs.offset : fs.end], {fsimage.CONFIG: json.dumps(cfg).encode()})
    fsimage.write_atomic(path, flash[: fs.offset] + region + flash[fs.end :])


def read_sim_config(board, path):
    fs = fsimage.geometry(geometry.for_image(board, path))
    try:
        with open(path, "rb") as f:
            f.seek(fs.offset)
            region = f.read(fs.size)
    except OSError as err:
        return None, f"no flash image at {path} ({err.strerror}); nothing to back up"
    try:
        return fsimage.read_config(fs, region), f"read {path}"
    except MicrosError as err:
        return None, f"{err}; nothing to back up"


# -- the tasks' work ----------------------------------------------------------------

def _sized_image(board, sized, img, profile, cfg, fw=None):
    """(sized board, filesystem image for it): rebuilt when the chip's flash changes the region."""
    if sized.filesystem != board.filesystem:
        img = fsimage.image_for(sized, cfg, profiles.load(profile)["modules"])
        print(f"[flash] filesystem for {sized.flash_size} of flash: {sized.filesystem.offset:#x}, "
              f"{sized.filesystem.block_count} blocks", file=sys.stderr, flush=True)
    check_layout(sized, len(fw) if fw is not None else None, len(img))
    return sized, img


def flash(board, port=None, profile="default", firmware=None, prebuilt=None, erase=False,
          baud=FAST_BAUD, sets=None, device_file=None, index=None, ask=profiles.ask_secret, flash_size=None):
    """Everything is built and checked first; then one esptool write (or one image file write).
    The filesystem image is sized for the chip's flash (geometry.py): detected by esptool, or
    `flash_size`; on an ESP8266 that size also goes into the image header."""
    b = boards.flashable(boards.get(board) if isinstance(board, str) else board)
    flash_size = geometry.option(flash_size)  # a bad --flash-size stops here, before anything is built
    profiles.load(profile)  # a bad profile is refused first
    if prebuilt is not None:
        if firmware:
            raise MicrosError("--firmware and --prebuilt exclude each other: pick one")
        from microsctl.flashing import fetch

        # a micrOS release image: the core is frozen in, so the filesystem gets no copy of it
        firmware, _ = fetch.fetch(b, None if prebuilt is True else prebuilt, index=index)
    elif firmware is None:
        firmware = default_firmware(b)
        if firmware is None and not b.is_virtual:
            raise MicrosError(
                f"no firmware for {b.full_name}: run 'invoke build --board {b.name}', "
                "or pass --firmware PATH or --prebuilt"
            )
    fw = None
    if firmware is not None:
        fw = load_firmware(b, firmware)
    img, cfg = node_image(b, profile, sets, device_file, None, ask)
    check_layout(b, len(fw) if fw is not None else None, len(img))
    _warn(b, cfg, "flash")
    if b.is_virtual:
        path = sim_flash_path(port)
        new = None if erase else path  # --erase starts a new image: the board's size or --flash-size
        b, img = _sized_image(b, geometry.for_image(b, new, flash_size), img, profile, cfg, fw)
        path = write_sim_flash(b, path, img, fw, erase)
        imagemeta.record(path, profile, "invoke flash")
        what = "firmware region (ROMFS) and " if fw is not None else ""
        print(f"[flash] wrote {what}filesystem into {path}; boot it: invoke sim --flash {path}", file=sys.stderr)
        return {"path": path, "config": profiles.masked(cfg)}
    if not port:
        raise MicrosError("--port is required for a real board, e.g. --port /dev/ttyUSB0")
    sized, before = geometry.for_chip(b, port, flash_size)
    b, img = _sized_image(b, sized, img, profile, cfg, fw)
    fs = b.filesystem
    with staging(b) as stage:
        # an OTA table: bootloader, table, initial otadata and app apart, as ESP-IDF flashes (layout.py)
        parts = [(off, stage(name, data)) for off, name, data in layout.firmware_parts(b, fw, Path(firmware).name)]
        fs_path = stage(f"fs-{profile}.img", img)
        argv = write_argv(b, port, parts + [(fs.offset, fs_path)], baud, erase,
                          before=before, flash_size=geometry.header_size_arg(b))
        used = run_write(argv)
    return {"argv": used, "config": profiles.masked(cfg)}


def _warn(board, cfg, task):
    if not board.is_virtual:  # the virtual board joins no WiFi
        for w in checks.wifi_warnings(cfg):
            print(f"[{task}] warning: {w}", file=sys.stderr)


def provision(board, port=None, profile="default", baud=FAST_BAUD, sets=None, device_file=None,
              backup_to=BACKUPS, read_back=True, ask=profiles.ask_secret, force=False, flash_size=None):
    """Settings only: rewrite the filesystem region, after keeping the old config on the host
    and carrying the node's own values and the settings the profile does not name forward.
    The region is the one the firmware computes for the chip's flash (geometry.py)."""
    b = boards.flashable(boards.get(board) if isinstance(board, str) else board)
    flash_size = geometry.option(flash_size)
    prof = profiles.load(profile)  # a bad profile is refused before the node is touched
    fsimage.geometry(b)  # a variant without a filesystem is refused before the chip is asked
    before = "default-reset"
    if b.is_virtual:
        path = sim_flash_path(port)
        b = geometry.for_image(b, path, flash_size)
    elif port:
        # an ESP8266's filesystem is where its firmware's image header says: provisioning
        # follows it (and stops when it disagrees with the chip), it does not rewrite the header
        b, before = geometry.for_chip(b, port, flash_size, firmware_view=True)
    fs = fsimage.geometry(b)
    if b.is_virtual:
        node = readback.from_image_file(b, path)
    elif not port:
        raise MicrosError("--port is required for a real board, e.g. --port /dev/ttyUSB0")
    elif read_back:
        node = read_node_config(b, port, before=before)
    else:
        node = readback.NodeState(readback.SKIPPED, "read-back skipped (--no-backup): nothing is carried forward")
    print(f"[provision] {node.note}", file=sys.stderr)
    if node.state == readback.UNREADABLE:
        if not force:
            raise MicrosError(f"{node.note}; nothing was written: check the cable and port and run again, "
                              "or pass --force to write without a backup")
        print("[provision] --force: writing without a backup of the node's config", file=sys.stderr)
    saved = readback.backup(b, node, backup_to)  # on disk before anything is erased or written
    if saved:
        print(f"[provision] the node's previous config is kept in {saved}", file=sys.stderr)
    cfg, carried = readback.carry_forward(node, profile, sets, device_file,
                                          secrets="found" if b.is_virtual else True, ask=ask)
    if carried:
        print(f"[provision] carried forward from the node: {readback.describe_carried(carried, cfg)}", file=sys.stderr)
    if node.skipped:
        print(f"[provision] not carried (unknown or invalid here): {', '.join(sorted(node.skipped))}", file=sys.stderr)
    img = fsimage.image_for(b, cfg, prof["modules"])
    check_layout(b, fs_image_size=len(img))
    _warn(b, cfg, "provision")
    if b.is_virtual:
        write_sim_flash(b, path, img)
        imagemeta.record(path, profile, "invoke provision")
        print(f"[provision] wrote the filesystem into {path}", file=sys.stderr)
        return {"path": path, "backup": saved, "state": node.state, "carried": carried, "config": profiles.masked(cfg)}
    with staging(b) as stage:
        fs_path = stage(f"fs-{profile}.img", img)
        # after a complete read-back (or the flash-size probe) the stub is still running: chain
        # to it instead of resetting
        chained = node.state != readback.UNREADABLE and (read_back or before == "no-reset")
        before = "no-reset" if chained else "default-reset"
        used = run_write(write_argv(b, port, [(fs.offset, fs_path)], baud, before=before))
    return {"argv": used, "backup": saved, "state": node.state, "carried": carried, "config": profiles.masked(cfg)}
