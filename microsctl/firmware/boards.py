"""The board database: one boards/<NAME>/board.json per board, loaded into dataclasses.

Every offset, size and pin the host tools use comes from here, never from code.
`get("esp8266")` accepts the board name or a friendly alias; `get(name, variant)`
applies a variant's overrides (flash size, filesystem, irom0 budget, ...).
"""
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from microsctl import BOARDS, MicrosError

_SIZES = {"KB": 1024, "MB": 1024 * 1024}


def _int(v, what):
    """JSON numbers or hex strings ("0x200000") -> int."""
    if isinstance(v, bool):
        raise ValueError(f"{what} must be a number, not {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            pass
    raise ValueError(f"{what} must be a number or a hex string, not {v!r}")


def flash_bytes(text):
    """"4MB" -> 4194304, "512KB" -> 524288."""
    for unit, mul in _SIZES.items():
        if isinstance(text, str) and text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * mul
    raise ValueError(f"flash_size must look like 4MB or 512KB, not {text!r}")


@dataclass(frozen=True)
class Firmware:
    file: str
    offset: int


# How the firmware places its filesystem for the flash it finds at boot (flashing/geometry.py):
# "fixed" as board.json says; "flash-end" from `offset` to the physical end of flash (ESP32
# family, ports/esp32/main.c); "esp8266-sdk" from `offset` to the header's flash size minus
# `reserved_top` (ports/esp8266/modules/flashbdev.py). `size` is the size at the board's flash_size.
EXTENTS = ("fixed", "flash-end", "esp8266-sdk")


@dataclass(frozen=True)
class Filesystem:
    type: str
    offset: int
    size: int
    block_size: int
    read_size: int
    prog_size: int
    lookahead_size: int
    extent: str = "fixed"
    reserved_top: int = 0

    @property
    def block_count(self):
        return self.size // self.block_size

    @property
    def end(self):
        return self.offset + self.size


# ESP-IDF partition types and subtypes (components/partition_table/gen_esp32part.py)
PART_TYPES = {"app": 0x00, "data": 0x01}
PART_SUBTYPES = {"app": {"factory": 0x00, **{f"ota_{i}": 0x10 + i for i in range(16)}},
                 "data": {"ota": 0x00, "phy": 0x01, "nvs": 0x02}}


@dataclass(frozen=True)
class Partition:
    name: str
    type: str  # app, data
    subtype: str  # factory, ota_0.. (app); nvs, ota, phy (data)
    offset: int
    size: int

    @property
    def end(self):
        return self.offset + self.size

    @property
    def binary(self):
        """(name, type, subtype, offset, size) as the binary table holds them (checks.partitions)."""
        return (self.name, PART_TYPES[self.type], PART_SUBTYPES[self.type][self.subtype], self.offset, self.size)


@dataclass(frozen=True)
class PartitionTable:
    """The ESP-IDF partition table a MicroPython ESP32 board is built with (ports/esp32/<table>)."""

    table: str
    rows: tuple

    @property
    def end(self):
        """Where the firmware starts its vfs partition (ports/esp32/main.c): after the last partition."""
        return max(r.end for r in self.rows)

    @property
    def ota_slots(self):
        return tuple(r for r in self.rows if r.type == "app" and r.subtype.startswith("ota_"))

    @property
    def otadata(self):
        return next((r for r in self.rows if r.type == "data" and r.subtype == "ota"), None)

    @property
    def boot_app(self):
        """The app partition a first flash writes and an erased otadata boots: factory, else ota_0
        (esp-idf bootloader_utility.c, bootloader_utility_get_selected_boot_partition)."""
        apps = [r for r in self.rows if r.type == "app"]
        return next((r for r in apps if r.subtype == "factory"), None) or min(apps, key=lambda r: r.binary[2])

    @property
    def has_ota(self):
        return self.otadata is not None and len(self.ota_slots) >= 2

    def binary(self):
        return [r.binary for r in self.rows]


@dataclass(frozen=True)
class Region:
    offset: int
    size: int


@dataclass(frozen=True)
class Mpy:
    """The .mpy files a firmware accepts: version.sub and the native arch (mpy-cross -march)."""

    version: int
    sub: int
    arch: str

    @property
    def tag(self):
        return f"{self.version}.{self.sub}"


@dataclass(frozen=True)
class Irom0:
    """ESP8266 code space: the irom0 segment holds firmware code and all frozen bytecode.

    `length` is the linker region; `stock_used` is an estimate of what the stock
    firmware's own code takes of it (firmware.bin size minus its iram part), so
    `free` is the space left for micrOS's frozen bytecode, with `margin` kept back.
    """

    length: int
    stock_used: int
    extra_frozen: dict = field(default_factory=dict)  # manifest path -> estimated bytes
    margin: int = 16 * 1024

    @property
    def free(self):
        return self.length - self.stock_used - self.margin


@dataclass(frozen=True)
class Board:
    name: str
    aliases: tuple
    description: str
    port: str
    mpy_board: str
    variant: str
    chip: str
    flash_size: str
    firmware: Firmware
    filesystem: "Filesystem | None"
    mpy: Mpy
    pins: dict
    variants: tuple = ()
    asyncio_frozen_by_port: bool = True
    host_binary: bool = False  # the firmware is a program for this host (the unix port), not a flash image
    irom0: "Irom0 | None" = None
    romfs: "Region | None" = None
    partitions: "PartitionTable | None" = None  # ESP32 family: the table the firmware is built with
    dir: Path = field(default=None, compare=False)
    _raw_variants: dict = field(default_factory=dict, repr=False, compare=False)
    _raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def flash_bytes(self):
        return flash_bytes(self.flash_size)

    @property
    def full_name(self):
        return f"{self.name}-{self.variant}" if self.variant else self.name

    @property
    def is_virtual(self):
        """The sim board: its firmware is a ROMFS image of the core, its flash an image file."""
        return self.port == "unix" and not self.host_binary

    def with_variant(self, variant):
        """This board with a variant's overrides applied ("" or None: the default)."""
        if not variant:
            return self
        name = self.variant_named(variant)
        if name is None:
            valid = ", ".join(self.variants) or "none"
            raise MicrosError(f"board {self.name} has no variant {variant}: valid variants are {valid}")
        variant = name
        over = self._raw_variants[variant]
        merged = {}
        for key, val in over.items():  # a variant's dict merges into the board's, None removes
            base = self._raw.get(key)
            merged[key] = {**base, **val} if isinstance(val, dict) and isinstance(base, dict) else val
        kw = {"variant": variant}
        kw.update(_fields(merged, f"{self.name}/{variant}"))
        stated = (over.get("filesystem") or {}).get("offset")
        return _check(_placed(replace(self, **kw), stated))

    def variant_named(self, variant):
        """The variant's name as board.json spells it (ota -> OTA), or None."""
        return next((v for v in self.variants if v.lower() == str(variant).lower()), None)


def flashable(b):
    """The board, or a one-line error for the unix port's binary, which is run, not flashed."""
    if b.host_binary:
        raise MicrosError(f"{b.name} is a MicroPython program for this computer, not a board to flash or fetch: "
                          f"build it (invoke build --board {b.name}) and run it with "
                          f"'invoke sim --micropython build/{b.name}/{b.firmware.file} --frozen'")
    return b


def _fields(d, where):
    """Parse the typed fields of a board.json (or a variant's overrides)."""
    out = {}
    try:
        for key in ("port", "mpy_board", "chip", "flash_size", "description"):
            if key in d:
                out[key] = str(d[key])
        if "asyncio_frozen_by_port" in d:
            out["asyncio_frozen_by_port"] = bool(d["asyncio_frozen_by_port"])
        if "host_binary" in d:
            out["host_binary"] = bool(d["host_binary"])
        if "firmware" in d:
            fw = d["firmware"]
            out["firmware"] = Firmware(fw["file"], _int(fw["offset"], "firmware.offset"))
        if "filesystem" in d:
            fs = d["filesystem"]
            if fs is None:
                out["filesystem"] = None
            else:
                extent = str(fs.get("extent", "fixed"))
                if extent not in EXTENTS:
                    raise ValueError(f"filesystem.extent must be one of {', '.join(EXTENTS)}, not {extent!r}")
                out["filesystem"] = Filesystem(
                    type=fs["type"],
                    extent=extent,
                    reserved_top=_int(fs.get("reserved_top", 0), "filesystem.reserved_top"),
                    **{k: _int(fs[k], f"filesystem.{k}") for k in
                       ("offset", "size", "block_size", "read_size", "prog_size", "lookahead_size")},
                )
        if "mpy" in d:
            m = d["mpy"]
            out["mpy"] = Mpy(_int(m["version"], "mpy.version"), _int(m["sub"], "mpy.sub"), m["arch"])
        if "irom0" in d:
            i = d["irom0"]
            out["irom0"] = Irom0(
                _int(i["length"], "irom0.length"),
                _int(i["stock_used"], "irom0.stock_used"),
                {str(k): _int(v, f"irom0.extra_frozen.{k}") for k, v in i.get("extra_frozen", {}).items()},
            )
        if "romfs" in d:
            r = d["romfs"]
            out["romfs"] = None if r is None else Region(_int(r["offset"], "romfs.offset"), _int(r["size"], "romfs.size"))
        if "partitions" in d:
            pt = d["partitions"]
            if pt is not None and not pt["rows"]:
                raise ValueError("partitions.rows is empty")
            out["partitions"] = None if pt is None else PartitionTable(str(pt["table"]), tuple(
                _partition(row, f"partitions.rows[{i}]") for i, row in enumerate(pt["rows"])))
        if "pins" in d:
            out["pins"] = {str(k): _int(v, f"pins.{k}") for k, v in d["pins"].items()}
    except (KeyError, TypeError) as err:
        raise MicrosError(f"{where}: board.json is missing or mistypes {err}: fix the file") from err
    except ValueError as err:
        raise MicrosError(f"{where}: {err}: fix board.json") from err
    return out


def _partition(row, what):
    name, ptype, sub, off, size = row
    if ptype not in PART_SUBTYPES or sub not in PART_SUBTYPES[ptype]:
        raise ValueError(f"{what}: {ptype}/{sub} is not an ESP-IDF partition type/subtype")
    return Partition(str(name), ptype, sub, _int(off, f"{what}.offset"), _int(size, f"{what}.size"))


def _placed(b, stated=None):
    """ESP32 family: the filesystem runs from the end of the partition table's last partition to the
    end of flash (ports/esp32/main.c), so a table places it; an offset board.json states must agree."""
    fs, pt = b.filesystem, b.partitions
    if fs is None or pt is None or fs.extent != "flash-end":
        return b
    if stated is not None and _int(stated, "filesystem.offset") != pt.end:
        raise MicrosError(f"boards/{b.name}/board.json{' variant ' + b.variant if b.variant else ''}: filesystem "
                          f"offset {stated} is not where {pt.table} ends ({pt.end:#x}): fix board.json")
    return replace(b, filesystem=replace(fs, offset=pt.end, size=b.flash_bytes - pt.end))


def _check(b):
    """Geometry that must hold for every board; a broken board.json fails early."""
    where = f"boards/{b.name}/board.json" + (f" variant {b.variant}" if b.variant else "")
    try:
        size = b.flash_bytes
    except ValueError as err:
        raise MicrosError(f"{where}: {err}") from err
    if not 0 <= b.firmware.offset < size:
        raise MicrosError(f"{where}: firmware offset {b.firmware.offset:#x} is outside the {b.flash_size} flash")
    fs = b.filesystem
    if fs is not None:
        if fs.offset % fs.block_size or fs.size % fs.block_size:
            raise MicrosError(f"{where}: filesystem offset and size must be multiples of its block size {fs.block_size}")
        if fs.end > size:
            raise MicrosError(f"{where}: filesystem ends at {fs.end:#x}, past the {b.flash_size} flash")
        if fs.offset <= b.firmware.offset:
            raise MicrosError(f"{where}: filesystem must come after the firmware")
    pt = b.partitions
    if pt is not None:
        rows = sorted(pt.rows, key=lambda r: r.offset)
        for a, nxt in zip(rows, rows[1:]):
            if a.end > nxt.offset:
                raise MicrosError(f"{where}: partitions {a.name} and {nxt.name} overlap")
        if pt.end > size:
            raise MicrosError(f"{where}: {pt.table} ends at {pt.end:#x}, past the {b.flash_size} flash")
        if pt.otadata is not None and len(pt.ota_slots) < 2:
            raise MicrosError(f"{where}: {pt.table} has otadata but not two ota app slots")
    return b


def load(path):
    """One board.json -> Board (default variant)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise MicrosError(f"cannot read {path}: {err}") from err
    where = str(path)
    required = ("name", "port", "mpy_board", "chip", "flash_size", "firmware", "filesystem", "mpy", "pins")
    missing = [k for k in required if k not in d]
    if missing:
        raise MicrosError(f"{where}: missing {', '.join(missing)}: fix board.json")
    if d["name"] != path.parent.name:
        raise MicrosError(f"{where}: name {d['name']!r} must equal its folder name {path.parent.name!r}")
    variants = d.get("variants") or {}
    b = Board(
        name=d["name"],
        aliases=tuple(d.get("aliases", ())),
        variant=d.get("variant", ""),
        variants=tuple(variants),
        dir=path.parent,
        _raw_variants=variants,
        _raw=d,
        **{"description": "", **_fields(d, where)},
    )
    return _check(_placed(_check(b), (d.get("filesystem") or {}).get("offset")))


def all_boards(root=BOARDS):
    """Every board under boards/, sorted by name."""
    return [load(p) for p in sorted(Path(root).glob("*/board.json"))]


def names(root=BOARDS):
    return [b.name for b in all_boards(root)]


def normalise(name):
    """The key a board is looked up by: case, '-', '_' and spaces do not count, so
    esp32-c3, esp32_c3, ESP32C3 and ESP32_GENERIC_C3 all name the same board."""
    return re.sub(r"[-_\s]", "", str(name)).lower()


def valid(boards):
    return ", ".join(f"{b.name} ({'/'.join(b.aliases)})" if b.aliases else b.name for b in boards)


def get(name, variant=None, root=BOARDS):
    """A board by name or alias, in any of its spellings (see normalise), with an optional variant."""
    boards = all_boards(root)
    if not name:
        raise MicrosError(f"--board is required: valid boards are {valid(boards)}")
    key = normalise(name)
    for b in boards:
        if key in (normalise(n) for n in (b.name, *b.aliases)):
            if variant and b.variant_named(variant) is None:
                raise MicrosError(no_variant(b, variant, boards))
            return b.with_variant(variant)
    raise MicrosError(f"unknown board {str(name)!r}: valid boards are {valid(boards)}")


def no_variant(board, variant, boards):
    """The one line for a board without this variant: its own variants and the boards that have it."""
    has = [b for b in boards if b.variant_named(variant) is not None]
    own = ", ".join(board.variants) or "none"
    if not has:
        return f"board {board.name} has no variant {variant}: valid variants are {own}"
    use = has[0].aliases[0] if has[0].aliases else has[0].name
    return (f"board {board.name} has no variant {has[0].variant_named(variant)} (its variants: {own}); "
            f"MicroPython v1.28.0 has it for {valid(has)}: e.g. --board {use} --variant {variant}")


def table(root=BOARDS):
    """`invoke boards`: column headers and one row per board."""
    head = ("Board", "Aliases", "Chip", "Flash", "Firmware", "Filesystem", "MPY", "Variants")
    rows = []
    for b in all_boards(root):
        fs = b.filesystem
        rows.append((b.name, "/".join(b.aliases), b.chip, b.flash_size,
                     # the unix port's binary is a program for this computer, run as the virtual board
                     f"{b.firmware.file}, a host program" if b.host_binary else
                     f"{b.firmware.file} @ {b.firmware.offset:#x}",
                     f"{fs.offset:#x}+{fs.size:#x}" if fs else "none",
                     f"{b.mpy.tag} {b.mpy.arch}", ", ".join(describe_variant(b, v) for v in b.variants)))
    return head, rows


def describe_variant(board, variant):
    """A variant as `invoke boards` lists it: OTA ones with their app slots and filesystem."""
    v = board.with_variant(variant)
    if v.partitions is None or not v.partitions.has_ota:
        return variant
    slots = v.partitions.ota_slots
    size = min(s.size for s in slots)
    fs = v.filesystem
    return f"{variant} ({len(slots)} app slots of {size // 1024} KB, filesystem {fs.offset:#x}+{fs.size:#x})"
