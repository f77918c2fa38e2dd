"""Checks made before anything is written to a board.

- The firmware file is an image for the board's chip and fits the board's layout.
  Images are parsed with esptool's own classes (`esptool.bin_image.LoadFirmwareImage`):
  magic 0xE9, the chip ID of the extended header (ESP32 family), the checksum and the
  appended SHA-256, as `esptool image-info` checks them. What a MicroPython v1.28.0
  `firmware.bin` holds is read from the scripts that make it:
  ports/esp8266/makeimg.py (ROM-loaded part padded to 0x9000, its length, irom0, MD5)
  and ports/esp32/makeimg.py (bootloader, partition table at 0x8000, app). Where the
  ESP32 firmware puts its filesystem follows ports/esp32/main.c: a "vfs"/"ffat"
  partition if the table has one, else from the end of the last partition.
- A node whose WiFi settings are still conf.py's placeholders comes up as an access
  point (frozen/micros/net.py): say so.
- A chip that is not the board's: name the chip that answered and the --board to use.
"""
import contextlib
import hashlib
import io
import re
import struct

from microsctl import MicrosError

ESP_IMAGE_MAGIC = 0xE9
ROMFS_MAGIC = b"\xd2\xcd\x31"  # vfs.VfsRom image header (extmod/vfs_rom.c)
PARTITION_TABLE_OFFSET = 0x8000  # ESP-IDF default, used by every MicroPython ESP32 board here
ESP8266_SEGS_MAX = 0x9000  # SEGS_MAX_SIZE in ports/esp8266/makeimg.py
_ROW = struct.Struct("<2sBBLL16sL")  # ESP-IDF partition table row (gen_esp32part.py)
_APP = 0x00


def _what_to_do(board):
    return (f"pass the firmware.bin that 'invoke build --board {board.aliases[0] if board.aliases else board.name}' "
            "made (build/<board>/), or use --prebuilt")


def _load(chip, data):
    """esptool's parse of an image, its warnings kept off the terminal; None if it does not parse."""
    from esptool.bin_image import LoadFirmwareImage
    from esptool.util import FatalError

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return LoadFirmwareImage(chip, data)
    except (FatalError, RuntimeError, struct.error, ValueError, IndexError, KeyError, TypeError) as err:
        return err


def _integrity(img):
    """What esptool image-info would call invalid in a parsed image, or None."""
    if img.checksum != img.calculate_checksum():
        return f"its checksum is wrong ({img.checksum:#04x}, calculated {img.calculate_checksum():#04x})"
    if getattr(img, "append_digest", False) and img.stored_digest != img.calc_digest:
        return "its appended SHA-256 does not match"
    return None


def image_chip(data):
    """The chip a valid image was made for (esptool's chip name, e.g. 'esp32c3'), or None."""
    from esptool.targets import CHIP_DEFS

    img = _load("esp32", data)
    if not isinstance(img, Exception) and _integrity(img) is None:
        for name, rom in CHIP_DEFS.items():
            if getattr(rom, "IMAGE_CHIP_ID", None) == img.chip_id and name != "esp8266":
                return name
    img = _load("esp8266", data)
    if not isinstance(img, Exception) and _integrity(img) is None:
        return "esp8266"
    return None


def chip_title(chip):
    from esptool.targets import CHIP_DEFS

    rom = CHIP_DEFS.get(chip)
    return rom.CHIP_NAME if rom else chip.upper()


def boards_for_chip(chip):
    """--board names (first alias) of the real boards with this chip."""
    from microsctl.firmware import boards

    key = chip.lower().replace("-", "")
    return [b.aliases[0] if b.aliases else b.name for b in boards.all_boards() if b.chip == key and not b.is_virtual]


def _use_board(chip):
    names = boards_for_chip(chip)
    return f"--board {names[0]}" if names else f"a board for the {chip_title(chip)} (micrOS has none: invoke boards)"


def _one_image(board, data, name, where):
    """Parse the image at `where` in the file as one for the board's chip; return it."""
    from esptool.targets import CHIP_DEFS

    img = _load(board.chip, data)
    if isinstance(img, Exception):
        other = image_chip(data)
        if other and other != board.chip:
            raise MicrosError(f"{name} is an image for the {chip_title(other)}, not the {chip_title(board.chip)} of "
                              f"--board {board.name}: use {_use_board(other)}, or the firmware for this board")
        raise MicrosError(f"{name}: the image {where} does not parse ({img}): {_what_to_do(board)}")
    want = getattr(CHIP_DEFS[board.chip], "IMAGE_CHIP_ID", None)
    if want is not None and img.chip_id != want:
        other = image_chip(data)
        if other and other != board.chip:
            raise MicrosError(f"{name} is an image for the {chip_title(other)}, not the {chip_title(board.chip)} of "
                              f"--board {board.name}: use {_use_board(other)}, or the firmware for this board")
        raise MicrosError(f"{name}: the image {where} has chip ID {img.chip_id}, the {chip_title(board.chip)} needs "
                          f"{want}: {_what_to_do(board)}")
    bad = _integrity(img)
    if bad:
        other = image_chip(data)
        if other and other != board.chip:
            raise MicrosError(f"{name} is an image for the {chip_title(other)}, not the {chip_title(board.chip)} of "
                              f"--board {board.name}: use {_use_board(other)}, or the firmware for this board")
        raise MicrosError(f"{name}: the image {where} is damaged, {bad}: download or build it again")
    return img


def partitions(table):
    """[(name, type, subtype, offset, size)] of an ESP-IDF binary partition table; MicrosError if
    there is none or its MD5 row does not match."""
    rows = []
    for i in range(0, len(table) - _ROW.size + 1, _ROW.size):
        magic, ptype, sub, off, size, label, _flags = _ROW.unpack_from(table, i)
        if magic == b"\xeb\xeb":  # MD5 of the rows before it
            if table[i + 16 : i + 32] != hashlib.md5(table[:i]).digest():
                raise MicrosError("the partition table's MD5 does not match")
            break
        if magic != b"\xaa\x50":
            break
        rows.append((label.rstrip(b"\0").decode("ascii", "replace"), ptype, sub, off, size))
    if not rows:
        raise MicrosError("no partition table")
    return rows


def fs_offset_of(rows):
    """Where MicroPython v1.28.0 puts the ESP32 filesystem for this table (ports/esp32/main.c)."""
    for name, ptype, _sub, off, _size in rows:
        if ptype != _APP and name in ("vfs", "ffat"):
            return off
    return max(off + size for _n, _t, _s, off, size in rows)


def _image_length(img):
    return img.data_length + 32 if getattr(img, "append_digest", False) else img.data_length


def image_length(chip, data):
    """Bytes of the ESP image at the start of `data` (header, segments, checksum, SHA-256), as
    esptool parses it; MicrosError if it does not parse."""
    img = _load(chip, data)
    if isinstance(img, Exception):
        raise MicrosError(f"no {chip_title(chip)} image here ({img})")
    return _image_length(img)


def check_esp32_firmware(board, data, name):
    """ESP32 family: firmware.bin = bootloader (at the board's firmware offset) + partition table
    (0x8000) + app (its partition), as ports/esp32/makeimg.py joins them."""
    from esptool.targets import CHIP_DEFS

    off = board.firmware.offset
    boot = _one_image(board, data, name, "at its start")
    rom = CHIP_DEFS[board.chip]
    if boot.segments and any(boot.is_flash_addr(s.addr) for s in boot.segments):
        raise MicrosError(
            f"{name} is an application image (micropython.bin, for 0x10000), not firmware.bin "
            f"(bootloader + partition table + app) for {off:#x}: pass firmware.bin")
    if rom.BOOTLOADER_FLASH_OFFSET != off:
        raise MicrosError(f"board {board.full_name}: firmware offset {off:#x} is not the {chip_title(board.chip)} "
                          f"bootloader offset {rom.BOOTLOADER_FLASH_OFFSET:#x}: fix board.json")
    at = PARTITION_TABLE_OFFSET - off
    if len(data) < at + _ROW.size:
        raise MicrosError(f"{name} ends before the partition table at {PARTITION_TABLE_OFFSET:#x}: it is a bootloader "
                          f"alone or cut short; {_what_to_do(board)}")
    try:
        rows = partitions(data[at : at + 0xC00])
    except MicrosError as err:
        raise MicrosError(f"{name}: {err} at {PARTITION_TABLE_OFFSET:#x}: {_what_to_do(board)}") from err
    apps = [r for r in rows if r[1] == _APP]
    if not apps:
        raise MicrosError(f"{name}: the partition table has no app partition: {_what_to_do(board)}")
    app_name, _, _, app_off, app_size = apps[0]
    app = _one_image(board, data[app_off - off :], name, f"at {app_off:#x} (partition {app_name})")
    if _image_length(app) > app_size:
        raise MicrosError(f"{name}: the app ({_image_length(app)} bytes) is larger than its partition "
                          f"{app_name} ({app_size} bytes)")
    # an OTA table: a firmware update writes the other slot, so the app must fit every ota slot
    # (ESP32_GENERIC/sdkconfig.ota builds for size to fit partitions-4MiB-ota.csv's 0x180000)
    for slot, _t, _s, _o, size in (r for r in apps if 0x10 <= r[2] < 0x20):
        if _image_length(app) > size:
            raise MicrosError(f"{name}: the app ({_image_length(app)} bytes) does not fit the OTA slot {slot} "
                              f"({size} bytes): a firmware update could not write it; build it smaller")
    fs_at = fs_offset_of(rows)
    if board.partitions is not None and board.partitions.binary() != list(rows):
        built_for = variant_of(board, rows)
        if built_for is None:
            what, do = "a table board.json does not know", "pass the firmware built for this board"
        else:
            table = base_board(board).with_variant(built_for).partitions.table
            what = f"{table}, the {built_for or 'default'} variant's"
            do = (f"pick the --variant it was built for, --variant {built_for.lower()}" if built_for
                  else "it was built for the board's default: leave out --variant")
        raise MicrosError(f"{name}: its partition table is {what} and puts the filesystem at {fs_at:#x}; board "
                          f"{board.full_name} uses {board.partitions.table} (filesystem at "
                          f"{board.filesystem.offset:#x}): {do}")
    if board.filesystem is not None and fs_at != board.filesystem.offset:
        raise MicrosError(
            f"{name}: its partition table puts the filesystem at {fs_at:#x}, board {board.full_name} at "
            f"{board.filesystem.offset:#x}: pick the --variant this firmware was built for, or the firmware for it")


def variant_of(board, rows):
    """The board's variant ("" the default) whose partition table the firmware carries, or None."""
    base = base_board(board)
    for v in ("",) + base.variants:
        pt = base.with_variant(v).partitions
        if pt is not None and pt.binary() == list(rows):
            return v
    return None


def base_board(board):
    """The board's default variant, as board.json has it."""
    from microsctl.firmware import boards

    return boards.get(board.name, root=board.dir.parent) if board.dir else boards.get(board.name)


def check_esp8266_firmware(board, data, name):
    """ESP8266: the ROM-loaded image at 0, then (ports/esp8266/makeimg.py) its length at 0x8ffc,
    irom0, and the MD5 of everything after the first 4 bytes (which esptool may rewrite)."""
    _one_image(board, data, name, "at its start")
    if len(data) <= ESP8266_SEGS_MAX:
        raise MicrosError(f"{name} ends before 0x9000, where MicroPython's irom0 part starts: "
                          f"it is cut short or not a MicroPython firmware.bin; {_what_to_do(board)}")
    (total,) = struct.unpack_from("<I", data, ESP8266_SEGS_MAX - 4)
    if total + 16 != len(data) or hashlib.md5(data[4:total]).digest() != data[total:]:
        raise MicrosError(f"{name} is damaged or cut short: the MD5 that MicroPython's makeimg.py appends "
                          f"does not match; {_what_to_do(board)}")


def check_firmware(board, data, name):
    """Refuse a firmware file that is not an image for the board's chip or does not fit its layout."""
    if board.is_virtual:  # the virtual board's firmware is the core's ROMFS image
        if data[:3] != ROMFS_MAGIC:
            raise MicrosError(f"{name} is not a ROMFS image (it starts with {data[:4].hex()}, a ROMFS image with "
                              f"d2cd31): pass the image 'invoke build --board sim' made")
        return
    if data[0] != ESP_IMAGE_MAGIC:
        raise MicrosError(f"{name} is not a firmware image (an ESP image starts with byte 0xe9, this file with "
                          f"{data[0]:#04x}): {_what_to_do(board)}")
    if board.chip == "esp8266":
        check_esp8266_firmware(board, data, name)
    else:
        check_esp32_firmware(board, data, name)


# -- settings --------------------------------------------------------------

def wifi_warnings(cfg):
    """Warnings for WiFi settings left at conf.py's placeholders: the node's net.py then starts an
    access point named after devfid, protected by appwd."""
    from microsctl.flashing import schema

    dflt = schema.defaults()
    ssid = cfg.get("staessid", dflt["staessid"])
    if ssid in ("", dflt["staessid"]):  # net.py: ssid in ("", "your_wifi_name") -> no STA at all
        return [f"staessid is still the placeholder {dflt['staessid']!r}: the node will come up as an access point "
                f"named {cfg.get('devfid', dflt['devfid'])!r} (password: appwd); to join your WiFi use "
                "--set staessid=NAME and MICROS_STAPWD"]
    if cfg.get("stapwd") == dflt["stapwd"]:
        return [f"stapwd is still the placeholder: joining {ssid!r} will fail and the node falls back to an access "
                f"point named {cfg.get('devfid', dflt['devfid'])!r}; set MICROS_STAPWD"]
    return []


# -- the chip on the wire --------------------------------------------------------

_WRONG_CHIP = re.compile(r"This chip is (?P<found>[\w-]+), not (?P<want>[\w-]+)")


def wrong_chip(message, port=None):
    """esptool's 'This chip is X, not Y' as a MicrosError naming the --board to use, or None."""
    m = _WRONG_CHIP.search(str(message))
    if not m:
        return None
    found = m["found"].lower().replace("-", "")
    on = f" on {port}" if port else ""
    return MicrosError(f"the chip that answered{on} is an {m['found']}, not the {m['want']} of the --board given: "
                       f"use {_use_board(found)}")
