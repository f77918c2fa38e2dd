"""Firmware update over USB with the node's settings kept (the original micrOS's devToolKit --update).

`invoke flash` writes a new filesystem image; `invoke update` writes the firmware region only,
once it knows the node's filesystem will still mount under the new firmware:

1. one esptool session (flasher stub) learns what the firmware on the chip sees: the chip's
   flash size (its flash-ID probe), the ESP8266 image header at 0x0 (the size the old firmware
   believes, ports/esp8266/modesp.c) or the ESP32 partition table at 0x8000 (where
   ports/esp32/main.c starts the vfs), and the node's littlefs there, mounted with
   block_count 0 so its superblock says how many blocks it was made with;
2. the new firmware's view of the same chip (geometry.py; checks.py has already matched its
   partition table to the board): littlefs mounts only with the block count the firmware
   passes (lib/littlefs/lfs2.c, lfs2_mount), so "same layout" is same offset and same count;
3. node_config.json is kept on the host (readback.backup) before anything is written;
4. same layout: esptool writes the firmware alone; the filesystem region is not touched.
   Another layout (a new partition table, another ESP8266 header size): every file of the
   node (config and user files) is read and carried into a new image for the new layout,
   written with the firmware in the same esptool connection.

A node whose filesystem does not mount has nothing to keep: with the same layout the firmware
is written alone (an erased region is formatted by the port's inisetup.py, as before); with a
new layout we stop and point to `invoke flash`. An unreadable flash stops the update unless
--force. The virtual board: the ROMFS core region of its flash image is rewritten.
"""
import contextlib
import io
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from littlefs import LittleFS, LittleFSError

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.flashing import checks
from microsctl.flashing import flash as fl
from microsctl.flashing import fsimage
from microsctl.flashing import geometry
from microsctl.flashing import imagemeta
from microsctl.flashing import layout
from microsctl.flashing import readback

KEEP, CARRY, NOTHING = "keep", "carry", "nothing"


@dataclass
class Node:
    """What the firmware on the chip sees of its filesystem."""

    fs: object  # boards.Filesystem where the current firmware mounts it, or None (no room: 1MB header)
    state: readback.NodeState  # node_config.json: found, none, corrupt, unreadable
    blocks: int | None = None  # the littlefs superblock's block count; None: it does not mount
    files: dict = None  # {path: bytes}, read when they must be carried


def _region(board, fs_offset, flash_bytes):
    """A Filesystem like the board's, at `fs_offset`, sized as the firmware sizes it; None if no room."""
    b = replace(board, filesystem=replace(board.filesystem, offset=fs_offset), flash_size=geometry.name_of(flash_bytes))
    try:
        return geometry.region(b, flash_bytes)
    except MicrosError:
        return None


def current_fs(board, flash_bytes, head):
    """Where the firmware on the chip mounts its filesystem: `head` is the ESP8266 image header
    (16 bytes at 0x0) or the ESP32 partition table (0xC00 bytes at 0x8000)."""
    if board.chip == "esp8266":
        believed = geometry.esp8266_header_size(head)
        if believed is None:
            return None
        return _region(board, board.filesystem.offset, geometry.SIZES[believed])
    try:
        rows = checks.partitions(head)
    except MicrosError:
        return None
    return _region(board, checks.fs_offset_of(rows), flash_bytes)


def survey(read, fs, carry):
    """Node state of the region `fs` read through read(offset, size): the config (readback.judge),
    the superblock's block count, and with `carry` every file."""
    memo = {}

    def cached(offset, size):
        if (offset, size) not in memo:
            memo[(offset, size)] = read(offset, size)
        return memo[(offset, size)]

    state = readback.judge(cached, fs)
    node = Node(fs, state)
    if state.state == readback.UNREADABLE:
        return node
    ctx = readback._Blocks(cached, fs)
    lfs = LittleFS(context=ctx, mount=False, block_size=fs.block_size, block_count=0, read_size=fs.read_size,
                   prog_size=fs.prog_size, lookahead_size=fs.lookahead_size, name_max=fsimage.NAME_MAX,
                   block_cycles=fsimage.BLOCK_CYCLES)
    try:
        lfs.mount()
        node.blocks = lfs.fs_stat().block_count
        if carry:
            node.files = {}
            for root, _dirs, names in lfs.walk("/"):
                for n in names:
                    path = f"{root.rstrip('/')}/{n}".lstrip("/")
                    with lfs.open(path, "rb") as f:
                        node.files[path] = f.read()
    except LittleFSError:
        node.blocks, node.files = None, None
    if ctx.error is not None:
        node.state = readback.NodeState(readback.UNREADABLE, f"could not read the node's flash ({ctx.error})")
    return node


def plan(node, new_fs):
    """keep (same layout, mounts), carry (mounts elsewhere or with another block count), or nothing."""
    if node.blocks is None:
        return NOTHING
    if node.fs.offset == new_fs.offset and node.blocks == new_fs.block_count:
        return KEEP
    return CARRY


def read_chip(board, port, flash_size=None, before="default-reset"):
    """(chip's flash size in bytes, Node with every file read): one esptool session, the stub left
    running (the write that follows connects with --before no-reset)."""
    import esptool
    from esptool.cmds import attach_flash, connect_esp, detect_flash_size, run_stub

    print(f"$ esptool --chip {board.chip} --port {port} --before {before} --after no-reset-stub read-flash "
          "(image header or partition table, the filesystem blocks in use)", file=sys.stderr, flush=True)
    try:
        with connect_esp(port=port, chip=board.chip, before=before) as esp:
            esp = run_stub(esp)
            attach_flash(esp)

            def read(offset, size):
                with contextlib.redirect_stdout(io.StringIO()):
                    return bytes(esp.read_flash(offset, size))

            with contextlib.redirect_stdout(io.StringIO()):
                found = geometry.option(flash_size) or detect_flash_size(esp)
            if found not in geometry.SIZES:
                raise MicrosError(f"the chip on {port} did not report a flash size esptool knows ({found}): "
                                  "pass it with --flash-size, e.g. --flash-size 4MB")
            size = geometry.SIZES[found]
            head = read(0, 16) if board.chip == "esp8266" else read(checks.PARTITION_TABLE_OFFSET, 0xC00)
            # no filesystem where the firmware on the chip looks (an ESP8266 header saying 1MB, an
            # erased chip): what matters is whether the new firmware finds one where it looks
            fs = current_fs(board, size, head) or geometry.sized(board, found).filesystem
            return size, survey(read, fs, carry=True)
    except (esptool.FatalError, OSError) as err:
        wrong = checks.wrong_chip(err, port)
        if wrong is not None:
            raise wrong from err
        text = str(err).strip().splitlines()
        return None, Node(None, readback.NodeState(
            readback.UNREADABLE, f"could not read the node's flash ({text[0] if text else type(err).__name__})"))


def _say(text):
    print(f"[update] {text}", file=sys.stderr, flush=True)


def _keep_on_host(board, node, backup_to):
    """The config (readback.backup), and when files are carried, all of them beside it."""
    saved = readback.backup(board, node.state, backup_to)
    if saved and node.files:
        for path, data in node.files.items():
            if path != fsimage.CONFIG:
                fsimage.write_atomic(saved.parent / "files" / path, data)
    if saved:
        _say(f"the node's config is kept in {saved}")
    return saved


def _firmware(board, firmware, prebuilt, index):
    """(path, bytes) of the new firmware, checked for the board."""
    if prebuilt is not None:
        if firmware:
            raise MicrosError("--firmware and --prebuilt exclude each other: pick one")
        from microsctl.flashing import fetch

        firmware, _ = fetch.fetch(board, None if prebuilt is True else prebuilt, index=index)
    elif firmware is None:
        if board.is_virtual:
            from microsctl.firmware import build

            firmware = build.build_sim(board)
        else:
            firmware = fl.default_firmware(board)
    if firmware is None:
        raise MicrosError(f"no firmware for {board.full_name}: run 'invoke build --board {board.name}', "
                          "or pass --firmware PATH or --prebuilt")
    data = fl.load_firmware(board, firmware)
    return Path(firmware), data


def update(board, port=None, firmware=None, prebuilt=None, baud=fl.FAST_BAUD, index=None, flash_size=None,
           backup_to=fl.BACKUPS, force=False):
    """Write new firmware and keep the node's settings; see the module doc. Returns a dict:
    mode (keep, carry, nothing), argv (real board) or path (sim), backup, state."""
    b = boards.get(board) if isinstance(board, str) else board
    flash_size = geometry.option(flash_size)
    fsimage.geometry(b)
    fw_path, fw = _firmware(b, firmware, prebuilt, index)
    if b.is_virtual:
        return _update_sim(b, port, fw_path, fw, backup_to)
    if not port:
        raise MicrosError("--port is required for a real board, e.g. --port /dev/ttyUSB0")
    size, node = read_chip(b, port, flash_size)
    _say(node.state.note)
    if node.state.state == readback.UNREADABLE:
        if not force:
            raise MicrosError(f"{node.state.note}; nothing was written: check the cable and port and run again, "
                              "or pass --force to write the firmware without keeping the settings")
        _say("--force: writing the firmware alone, without a backup")
        size, node = size or geometry.SIZES[flash_size or b.flash_size], Node(None, node.state)
    sized = geometry.sized(b, geometry.name_of(size))
    new_fs = sized.filesystem
    fl.check_layout(sized, firmware_size=len(fw))
    mode = plan(node, new_fs) if node.fs is not None else NOTHING
    if mode == NOTHING and node.fs is not None and (node.fs.offset, node.fs.block_count) != (
            new_fs.offset, new_fs.block_count) and node.state.state != readback.UNREADABLE:
        raise MicrosError(f"the node's filesystem does not mount ({node.state.note}) and the new firmware puts it "
                          f"elsewhere ({new_fs.offset:#x}, {new_fs.block_count} blocks): there are no settings to "
                          f"keep; write firmware and settings with 'invoke flash --board {b.name} --port {port}'")
    saved = _keep_on_host(b, node, backup_to)
    parts = []
    with fl.staging(sized) as stage:
        parts += [(off, stage(name, data)) for off, name, data in layout.firmware_parts(b, fw, fw_path.name)]
        if mode == CARRY:
            _say(f"the new firmware mounts the filesystem at {new_fs.offset:#x} with {new_fs.block_count} blocks, "
                 f"the node's is at {node.fs.offset:#x} with {node.blocks}: carrying its {len(node.files)} files "
                 f"({', '.join(sorted(node.files))}) into a new image")
            img = fsimage.build(new_fs, node.files)
            fl.check_layout(sized, len(fw), len(img))
            parts.append((new_fs.offset, stage("fs-carried.img", img)))
        elif mode == KEEP:
            _say(f"the node's filesystem ({new_fs.offset:#x}, {new_fs.block_count} blocks) mounts with the new "
                 "firmware: writing the firmware region only")
        else:
            _say("the node has no filesystem that mounts: writing the firmware alone (nothing to keep)")
        before = "no-reset" if node.state.state != readback.UNREADABLE else "default-reset"
        used = fl.run_write(fl.write_argv(sized, port, parts, baud, before=before,
                                          flash_size=geometry.header_size_arg(sized)))
    return {"mode": mode, "argv": used, "backup": saved, "state": node.state.state,
            "files": sorted(node.files or ())}


def _update_sim(b, port, fw_path, fw, backup_to):
    """The virtual board: its flash image file's ROMFS core region, the filesystem kept as it is."""
    path = fl.sim_flash_path(port)
    if not path.is_file():
        raise MicrosError(f"no flash image at {path}: the virtual node was never flashed; run "
                          f"'invoke flash --board sim --port {path}' first")
    sized = geometry.for_image(b, path)
    data = bytearray(path.read_bytes())
    fs = sized.filesystem
    node = survey(lambda off, n: bytes(data[off : off + n]), fs, carry=False)
    _say(node.state.note)
    saved = _keep_on_host(b, node, backup_to)
    if len(fw) > fs.offset - b.firmware.offset:
        raise MicrosError(f"{fw_path.name} ({len(fw)} bytes) runs into the filesystem at {fs.offset:#x}")
    data[b.firmware.offset : fs.offset] = b"\xff" * (fs.offset - b.firmware.offset)  # erased, then written
    data[b.firmware.offset : b.firmware.offset + len(fw)] = fw
    fsimage.write_atomic(path, bytes(data))
    imagemeta.record(path, (imagemeta.recorded(path) or {}).get("profile", "?"), "invoke update")
    _say(f"wrote the core region of {path}; the filesystem is as the node left it")
    return {"mode": KEEP if node.blocks is not None else NOTHING, "path": path, "backup": saved,
            "state": node.state.state, "files": []}

