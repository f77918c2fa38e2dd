"""The node's filesystem as a littlefs v2 image: settings injected before first boot.

The image has exactly the geometry MicroPython uses on the board (boards/<B>/board.json:
block size and count, read/prog/lookahead sizes; name_max 255, block_cycles 100,
cache 128 as in extmod/vfs_lfs.c), so `_boot.py` mounts it instead of formatting.
Everything is checked before a byte is written: names, sizes, the profile.
"""
import json
import os
import tempfile
from pathlib import Path

from littlefs import LittleFS, LittleFSError, UserContext

from microsctl import PORTS, MicrosError
from microsctl.flashing import profiles
from microsctl.flashing import schema

NAME_MAX = 255  # LFS_NAME_MAX in MicroPython's littlefs build
BLOCK_CYCLES = 100
CONFIG = "node_config.json"


def geometry(board):
    fs = board.filesystem
    if fs is None:
        raise MicrosError(f"board {board.full_name} has no filesystem partition: pick another variant")
    if fs.type != "littlefs2":
        raise MicrosError(f"board {board.full_name}: filesystem type {fs.type} is not supported (littlefs2 only)")
    return fs


def _lfs(fs, buf, mount):
    return LittleFS(
        context=UserContext(buffer=buf),
        mount=mount,
        block_size=fs.block_size,
        block_count=fs.block_count,
        read_size=fs.read_size,
        prog_size=fs.prog_size,
        lookahead_size=fs.lookahead_size,
        cache_size=min(fs.block_size, 4 * max(fs.read_size, fs.prog_size)),
        block_cycles=BLOCK_CYCLES,
        name_max=NAME_MAX,
    )


def check_names(files):
    for path in files:
        for part in path.split("/"):
            if not part or part in (".", ".."):
                raise MicrosError(f"bad file name {path!r} for the node filesystem")
            if len(part.encode()) > NAME_MAX:
                raise MicrosError(
                    f"file name {part[:40]}... is {len(part.encode())} bytes; littlefs allows {NAME_MAX}: rename it"
                )


def build(fs, files):
    """{path: bytes} -> the whole partition as a littlefs v2 image (bytes of fs.size)."""
    check_names(files)
    need = sum(len(v) for v in files.values())
    # every file takes at least a block's share of metadata; more than the partition cannot fit
    if need + (len(files) + 2) * fs.block_size > fs.size:
        raise MicrosError(
            f"the filesystem image needs about {need // 1024} KiB, more than the {fs.size // 1024} KiB partition: "
            "drop Load Modules from the profile"
        )
    buf = bytearray(b"\xff" * fs.size)
    lfs = _lfs(fs, buf, mount=False)
    try:
        lfs.format()
        lfs.mount()
        for path in sorted(files):
            parent = path.rpartition("/")[0]
            if parent:
                lfs.makedirs(parent, exist_ok=True)
            with lfs.open(path, "wb") as f:
                f.write(files[path])
        lfs.unmount()
    except LittleFSError as err:
        raise MicrosError(f"the files do not fit the {fs.size // 1024} KiB filesystem ({err}): drop Load Modules") from err
    assert len(buf) == fs.size
    return bytes(buf)


def read_files(fs, image, names=None):
    """{path: bytes} of the files in an image (all, or just `names`); MicrosError if it does not mount."""
    if len(image) != fs.size:
        raise MicrosError(f"a filesystem image for this board is {fs.size} bytes, not {len(image)}")
    try:
        lfs = _lfs(fs, bytearray(image), mount=False)
        lfs.mount()
    except LittleFSError as err:
        raise MicrosError(f"no littlefs filesystem in the image ({err}): it is erased or another format") from err
    out = {}
    try:
        for root, _dirs, fnames in lfs.walk("/"):
            for n in fnames:
                path = f"{root.rstrip('/')}/{n}".lstrip("/")
                if names is None or path in names:
                    with lfs.open(path, "rb") as f:
                        out[path] = f.read()
    except LittleFSError as err:
        raise MicrosError(f"the filesystem image is damaged ({err})") from err
    return out


def update(fs, image, files):
    """A copy of a mounted image with some files replaced; the other files stay as the node left them."""
    check_names(files)
    buf = bytearray(image)
    lfs = _lfs(fs, buf, mount=False)
    try:
        lfs.mount()
        for path, data in files.items():
            with lfs.open(path, "wb") as f:
                f.write(data)
        lfs.unmount()
    except LittleFSError as err:
        raise MicrosError(f"cannot update the node filesystem ({err}): reflash it with --fresh") from err
    return bytes(buf)


def read_config(fs, image):
    """node_config.json of an image as a dict; MicrosError when missing or not JSON."""
    files = read_files(fs, image, {CONFIG})
    if CONFIG not in files:
        raise MicrosError(f"the filesystem holds no {CONFIG}")
    try:
        return json.loads(files[CONFIG])
    except ValueError as err:
        raise MicrosError(f"{CONFIG} on the node is not valid JSON") from err


def builtin_pins(board):
    """The pins a node of this board knows without pinmap: micros_board.PINS of
    boards/<board>/micros_board.py, frozen with the core (or written to lib/ with it)."""
    import ast

    tree = ast.parse((board.dir / "micros_board.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PINS":
            text = ast.literal_eval(node.value)
            return {k.strip(): int(v) for k, _, v in (i.partition(":") for i in text.split(",") if i.strip())}
    return {}


def board_module(board):
    """micros_board.py of the board compiled to .mpy (bytecode only: any arch)."""
    from microsctl import BUILD
    from microsctl.firmware.compile import compile_files

    out = compile_files([board.dir / "micros_board.py"], BUILD / "prebuilt-board" / board.name,
                        f"boards/{board.name}/")
    return (out / "micros_board.mpy").read_bytes()


def board_pinmap(board, cfg_pinmap="n/a"):
    """The pinmap setting for a board: its pins where they differ from the device's built-in
    table for the chip family, after the user's own entries (the node takes the first match)."""
    builtin = builtin_pins(board)
    user = [] if cfg_pinmap == "n/a" else [x for x in cfg_pinmap.split(",") if x.strip()]
    named = {x.partition(":")[0].strip() for x in user}
    extra = [f"{k}:{v}" for k, v in board.pins.items() if builtin.get(k) != v and k not in named]
    return ",".join(user + extra) or "n/a"


def boot_files():
    """ports/main.py, which hands over to the frozen core, and ports/rescue.py as .mpy, which
    main.py imports only when that fails: compiled here, as what is left of a heap the core
    did not fit in may not hold the parser's and compiler's working memory (py/parse.c)."""
    from microsctl import BUILD
    from microsctl.firmware.compile import compile_files

    out = compile_files([PORTS / "rescue.py"], BUILD / "fs-boot", "", opt=3)
    return {"main.py": (PORTS / "main.py").read_bytes(), "rescue.mpy": (out / "rescue.mpy").read_bytes()}


def node_files(board, cfg, modules=(), core=None):
    """The files of a node: node_config.json, main.py and rescue.mpy, the profile's non-frozen Load Modules,
    and (prebuilt stock firmware) the compiled core under lib/ as {relative path: bytes}."""
    cfg = dict(cfg)
    cfg["pinmap"] = schema.validate("pinmap", board_pinmap(board, cfg.get("pinmap", "n/a")))
    files = {CONFIG: json.dumps(cfg).encode(), **boot_files()}
    for mod in modules:
        src = profiles.module_source(mod)
        if src is not None:
            files[src.name] = src.read_bytes()
        elif not core and mod not in frozen_lms(board):
            files[f"LM_{mod}.mpy"] = lm_mpy(mod)
    for rel, data in (core or {}).items():
        files[f"lib/{rel}"] = data
    if core:  # stock firmware: the board's own module goes with the core, as a build freezes it
        files["lib/micros_board.mpy"] = board_module(board)
    return files


def frozen_lms(board):
    """The Load Modules the board's firmware freezes (its manifest: the ESP8266 leaves
    the original micrOS's out of irom0)."""
    from microsctl.firmware import manifest

    return {t[len("micros/LM_"):-3] for t in manifest.for_board(board).targets() if t.startswith("micros/LM_")}


def lm_mpy(mod):
    """A core Load Module the firmware does not freeze, as .mpy for the filesystem (bytecode
    only: any arch; -O3 as the manifest would freeze it). The node finds it as LM_<mod>."""
    from microsctl import BUILD, FROZEN
    from microsctl.firmware.compile import compile_files

    out = compile_files([FROZEN / "micros" / f"LM_{mod}.py"], BUILD / "fs-lms", "", opt=3)
    return (out / f"LM_{mod}.mpy").read_bytes()


def image_for(board, cfg, modules=(), core=None):
    return build(geometry(board), node_files(board, cfg, modules, core))


def write_atomic(path, data):
    """Write a file whole or not at all: temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
