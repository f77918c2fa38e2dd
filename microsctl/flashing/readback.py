"""What is on the node before provisioning rewrites it: read, judged, kept, carried forward.

A read-back ends in one of four states:

- found:      node_config.json read and a JSON object;
- none:       the region is erased (block 0 all 0xFF: the node formats it at boot,
              ports/esp32/modules/inisetup.py check_bootsec), or littlefs mounts and holds no
              node_config.json: nothing to keep;
- corrupt:    the file is there but not a JSON object (the node itself would rename it
              to .bad and boot on defaults, frozen/micros/conf.py load), or the region is
              neither erased nor a mountable littlefs: the raw file, if any, is kept;
- unreadable: the flash could not be read (esptool failed, the link dropped, a short
              read) or holds a filesystem we cannot read (FAT): provisioning stops and writes
              nothing, unless --force.

littlefs is mounted with block_count 0, so the count is taken from the node's superblock:
a filesystem made for another flash size is still read, not mistaken for a damaged one.
The backup is on disk (written to a temp file, fsync'd, renamed, folder fsync'd) before
anything is erased or written.
"""
import contextlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from littlefs import LittleFS, LittleFSError

from microsctl import MicrosError
from microsctl.flashing import fsimage
from microsctl.flashing import profiles
from microsctl.flashing import schema

FOUND, NONE, CORRUPT, UNREADABLE, SKIPPED = "found", "none", "corrupt", "unreadable", "skipped"
CONFIG = fsimage.CONFIG
# values the node writes itself (frozen/micros/net.py: hwuid and nwmd are SYSTEM keys,
# devip is the first DHCP address, made static)
NODE_WRITTEN = ("hwuid", "nwmd", "devip")


@dataclass
class NodeState:
    state: str
    note: str
    cfg: dict = None  # found: the node's config
    raw: bytes = None  # found/corrupt: the file's bytes as read
    blocks: int = 0  # blocks read from the chip
    skipped: list = field(default_factory=list)  # keys of the node's config not carried (unknown, invalid)


class ReadError(Exception):
    """The flash could not be read."""


class _Blocks:
    """A littlefs-python context over `read(offset, size)`: blocks fetched on demand, cached.
    A failed read is recorded, never swallowed: littlefs only sees a block of zeros, and the
    caller asks `error` before believing anything littlefs said."""

    def __init__(self, read, fs):
        self.read_at, self.fs = read, fs
        self.cache = {}
        self.error = None

    def block(self, n):
        if self.error is not None:
            return bytes(self.fs.block_size)
        if n not in self.cache:
            try:
                data = self.read_at(self.fs.offset + n * self.fs.block_size, self.fs.block_size)
            except Exception as err:  # noqa: BLE001 - any failure of the link is a failed read
                self.error = err
                return bytes(self.fs.block_size)
            if len(data) != self.fs.block_size:
                self.error = ReadError(f"short read: {len(data)} of {self.fs.block_size} bytes of block {n}")
                return bytes(self.fs.block_size)
            self.cache[n] = bytes(data)
        return self.cache[n]

    def read(self, cfg, block, off, size):
        return bytearray(self.block(block)[off : off + size])

    def prog(self, cfg, block, off, data):
        raise OSError("read-only")

    def erase(self, cfg, block):
        raise OSError("read-only")

    def sync(self, cfg):
        return 0


def _one_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _is_fat(block0):
    return block0[510:512] == b"\x55\xaa" and block0[0] in (0xEB, 0xE9)


def judge(read, fs):
    """NodeState of the filesystem region read through read(offset, size)."""
    ctx = _Blocks(read, fs)
    lfs = LittleFS(context=ctx, mount=False, block_size=fs.block_size, block_count=0, read_size=fs.read_size,
                   prog_size=fs.prog_size, lookahead_size=fs.lookahead_size, name_max=fsimage.NAME_MAX,
                   block_cycles=fsimage.BLOCK_CYCLES)

    def unreadable():
        return NodeState(UNREADABLE, f"could not read the node's flash ({_one_line(ctx.error)})", blocks=len(ctx.cache))

    try:
        lfs.mount()
    except LittleFSError as err:
        head = ctx.block(0)
        if ctx.error is not None:
            return unreadable()
        if head == b"\xff" * fs.block_size:
            return NodeState(NONE, "the filesystem region is erased: no config on the node", blocks=len(ctx.cache))
        if _is_fat(head):
            return NodeState(UNREADABLE, "the node's filesystem is FAT, which provisioning cannot read back "
                             "(copy node_config.json off with mpremote first)", blocks=len(ctx.cache))
        return NodeState(CORRUPT, f"the filesystem region is neither erased nor a littlefs that mounts ({err}): "
                         "its files cannot be kept", blocks=len(ctx.cache))
    try:
        with lfs.open(CONFIG, "rb") as f:
            raw = f.read()
    except FileNotFoundError:  # littlefs-python's form of LFS_ERR_NOENT
        if ctx.error is not None:
            return unreadable()
        return NodeState(NONE, f"the node's filesystem holds no {CONFIG}", blocks=len(ctx.cache))
    except LittleFSError as err:
        if ctx.error is not None:
            return unreadable()
        if err.code == LittleFSError.Error.LFS_ERR_NOENT:
            return NodeState(NONE, f"the node's filesystem holds no {CONFIG}", blocks=len(ctx.cache))
        return NodeState(CORRUPT, f"{CONFIG} on the node cannot be read from its filesystem ({err})",
                         blocks=len(ctx.cache))
    if ctx.error is not None:
        return unreadable()
    try:
        cfg = json.loads(raw)
    except ValueError:
        cfg = None
    if not isinstance(cfg, dict):
        return NodeState(CORRUPT, f"{CONFIG} on the node is not a JSON object", raw=raw, blocks=len(ctx.cache))
    return NodeState(FOUND, f"read {CONFIG} ({len(ctx.cache)} blocks)", cfg=cfg, raw=raw, blocks=len(ctx.cache))


def from_chip(board, port, before="default-reset"):
    """NodeState of a chip's filesystem region: one esptool session (esptool.cmds), the flasher
    stub, only the blocks littlefs asks for. A chip that is not the board's is a MicrosError."""
    import esptool
    from esptool.cmds import attach_flash, connect_esp, run_stub

    from microsctl.flashing import checks

    fs = fsimage.geometry(board)

    def read(offset, size):
        with contextlib.redirect_stdout(io.StringIO()):
            return bytes(esp.read_flash(offset, size))

    result = None
    try:
        with connect_esp(port=port, chip=board.chip, before=before) as esp:
            esp = run_stub(esp)  # a few blocks only: no baud change, the stub stays at 115200
            attach_flash(esp)
            if board.partitions is not None:  # an OTA node's settings are not at the default's offset
                from microsctl.flashing import layout

                layout.check_node_table(board, read(checks.PARTITION_TABLE_OFFSET, layout.PARTITION_TABLE_MAX))
            result = judge(read, fs)  # its read errors end up in the result, not here
    except (esptool.FatalError, OSError) as err:
        wrong = checks.wrong_chip(err, port)
        if wrong is not None:
            raise wrong from err
        if result is None:
            return NodeState(UNREADABLE, f"could not read the node's flash ({_one_line(err)})")
    return result


def from_image_file(board, path):
    """NodeState of the filesystem region of a flash image file (the virtual board)."""
    fs = fsimage.geometry(board)
    path = Path(path)
    if not path.exists():
        return NodeState(NONE, f"no flash image at {path} yet: no config on the node")
    try:
        data = path.read_bytes()
    except OSError as err:
        return NodeState(UNREADABLE, f"could not read {path} ({err.strerror})")

    def read(offset, size):
        return data[offset : offset + size]

    return judge(read, fs)


# -- keeping it ---------------------------------------------------------------------

def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def backup(board, node, root):
    """Keep the node's config on the host before anything is written:
    <root>/<board>-<devfid>-<UTC time>/node_config.json (a corrupt one as node_config.json.bad).
    It may hold secrets: the folder and file are private to the user. None when there is nothing."""
    if node.raw is None:
        return None
    cfg = node.cfg or {}
    devfid = re.sub(r"[^A-Za-z0-9_.-]", "_", str(cfg.get("devfid", "node")))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    folder = Path(root) / f"{board.full_name}-{devfid}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    name = CONFIG if node.state == FOUND else CONFIG + ".bad"
    path = fsimage.write_atomic(folder / name, node.raw)
    os.chmod(path, 0o600)
    _fsync_dir(folder)
    _fsync_dir(folder.parent)
    return path


# -- carrying it forward ------------------------------------------------------------------

def node_values(node):
    """The node's settings that are valid today, as {key: value}; the others listed in node.skipped."""
    keep = {}
    known = schema.params()
    for k, v in (node.cfg or {}).items():
        if k not in known:
            node.skipped.append(k)
            continue
        try:
            keep[k] = schema.validate(k, v, system=True)
        except MicrosError:
            node.skipped.append(k)
    return keep


def carry_forward(node, profile, sets=None, device_file=None, secrets=True, ask=profiles.ask_secret):
    """(config, carried keys): the new config with the node's own values kept for every setting
    the profile, device file, --set and the host's secrets do not name. devip (the address the
    node made static) is dropped when staessid changes: it belongs to the old network."""
    kept = node_values(node) if node.state == FOUND else {}
    named = profiles.named(profile, sets, device_file)
    if "staessid" in named and "devip" in kept and kept.get("staessid") != profiles.settings(
            profile, sets, device_file, secrets=False).get("staessid"):
        del kept["devip"]
    host = set(profiles.find_secrets(profile)) if secrets else set()
    kept = {k: v for k, v in kept.items() if k not in named and k not in host}
    cfg = profiles.settings(profile, sets, device_file, secrets=secrets, ask=ask, node=kept)
    dflt = schema.defaults()
    carried = sorted(k for k, v in kept.items() if v != dflt[k] and cfg.get(k) == v)
    return cfg, carried


def describe_carried(carried, cfg):
    """'hwuid=aa:bb, devip=10.0.0.7, stapwd (secret)': values shown, secrets never."""
    secret = schema.secrets()
    return ", ".join(f"{k} (secret)" if k in secret else f"{k}={cfg[k]}" for k in carried)
