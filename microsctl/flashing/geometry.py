"""Where the node's filesystem lies on the chip actually connected, as its firmware computes it at boot.

MicroPython v1.28.0 sizes its filesystem at boot from the flash size, and littlefs refuses an
image whose block count differs from the device's (lib/littlefs/lfs2.c, lfs2_mount: "Invalid
block count"; the port's _boot.py then goes to inisetup.py). So the image we inject must have
exactly the block count the firmware will compute for that chip. board.json's
`filesystem.extent` names the rule (boards.EXTENTS):

- "flash-end", ESP32 family (ports/esp32/main.c, boardctrl_startup): the `vfs` partition runs
  from the end of the last partition of the table (board.json `offset`: 0x200000 with
  partitions-4MiBplus.csv, 0x310000 with partitions-4MiB-ota.csv) to the *physical* end of
  flash (esp_flash_get_physical_size: the chip's JEDEC ID, not the image header).
- "esp8266-sdk" (ports/esp8266/modules/flashbdev.py): from esp.flash_user_start() (0x100000:
  _firmware_size of boards/esp8266_common.ld with the 2MiB+ linker script) up to
  esp.flash_size() minus the SDK's 20 KiB. esp.flash_size() is what the image header at 0x0
  says (ports/esp8266/modesp.c reads the ROM's flashchip, set from header byte 3), so the
  header must carry the real size: esptool v5 keeps the header unless told (--flash-size).
- "fixed": offset and size as board.json says.

The chip's size comes from esptool (its JEDEC flash-ID probe) or the user's --flash-size.
"""
import contextlib
import io
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from microsctl import MicrosError

SECTOR = 4096
# the sizes esptool can write into an image header (ESP8266ROM / ESP32ROM FLASH_SIZES)
SIZES = {f"{n}KB": n * 1024 for n in (256, 512)} | {f"{n}MB": n << 20 for n in (1, 2, 4, 8, 16, 32, 64, 128)}
# ESP8266 image header byte 3, high nibble -> flash size (esptool's ESP8266ROM.FLASH_SIZES, inverted)
ESP8266_HEADER = {0x0: "512KB", 0x1: "256KB", 0x2: "1MB", 0x3: "2MB", 0x4: "4MB", 0x5: "2MB", 0x6: "4MB",
                  0x8: "8MB", 0x9: "16MB"}


def parse(text):
    """A flash size the user typed ("4MB", "4mb", "4M", "16MiB") -> its canonical name ("4MB")."""
    t = str(text).strip().upper().replace("IB", "B")
    if t.endswith(("M", "K")):
        t += "B"
    if t not in SIZES:
        raise MicrosError(f"--flash-size {text!r} is not a flash size: use one of {', '.join(SIZES)}")
    return t


def option(text):
    """--flash-size as given: None for detection ("detect" or nothing), else the canonical size."""
    if text is None or str(text).strip().lower() in ("", "detect"):
        return None
    return parse(text)


def name_of(nbytes):
    for name, n in SIZES.items():
        if n == nbytes:
            return name
    raise MicrosError(f"{nbytes} bytes is not a flash size esptool knows ({', '.join(SIZES)})")


def region(board, flash_bytes):
    """The board's Filesystem (offset, size) for a chip with this much flash, as the firmware
    computes it; MicrosError when that leaves no filesystem."""
    fs = board.filesystem
    if fs is None:
        raise MicrosError(f"board {board.full_name} has no filesystem partition: pick another variant")
    if fs.extent == "fixed":
        size = fs.size
    elif fs.extent == "flash-end":
        size = flash_bytes - fs.offset  # ports/esp32/main.c: esp_flash_default_chip->size - offset
    else:  # esp8266-sdk, ports/esp8266/modules/flashbdev.py
        start_sec = fs.offset // SECTOR  # flash_user_start() // SEC_SIZE, >= 256: no sector reserved for native code
        size = ((flash_bytes - fs.reserved_top) // SECTOR - start_sec) * SECTOR if flash_bytes >= 1 << 20 else 0
    if size <= 0 or fs.offset + size > flash_bytes:
        raise MicrosError(
            f"a {name_of(flash_bytes)} flash leaves no room for {board.full_name}'s filesystem at {fs.offset:#x}: "
            "pass the chip's real size with --flash-size"
        )
    return replace(fs, size=size - size % fs.block_size)


def sized(board, flash_size):
    """The board as seen on a chip with `flash_size` ("8MB" or bytes): flash_size and filesystem set."""
    name = name_of(flash_size) if isinstance(flash_size, int) else parse(flash_size)
    if board.filesystem is None:
        return replace(board, flash_size=name)
    return replace(board, flash_size=name, filesystem=region(board, SIZES[name]))


def header_size_arg(board):
    """esptool write-flash's --flash-size for this board: the real size where the firmware
    reads it from the image header (ESP8266), else keep the header as the port built it
    (ESP32: the firmware asks the chip itself, ports/esp32/main.c)."""
    return board.flash_size if board.chip == "esp8266" else "keep"


def esp8266_header_size(image):
    """The flash size an ESP8266 firmware will believe, from its image header at 0x0; None if
    the bytes are not an image."""
    if len(image) < 4 or image[0] != 0xE9:
        return None
    return ESP8266_HEADER.get(image[3] >> 4)


def detect(board, port, before="default-reset", header=False):
    """(flash size of the chip by esptool's flash-ID probe, with `header` the flash size in the
    ESP8266 image header at 0x0, else None). The flasher stub is left running, so the esptool
    connection that follows uses --before no-reset (no second reset or stub upload)."""
    from esptool.cmds import attach_flash, connect_esp, detect_flash_size, run_stub
    import esptool

    argv = ["--chip", board.chip, "--port", str(port), "--before", before, "--after", "no-reset-stub", "flash-id"]
    print("$ esptool " + shlex.join(argv), file=sys.stderr, flush=True)
    seen = None
    try:
        with connect_esp(port=port, chip=board.chip, before=before) as esp:
            esp = run_stub(esp)
            attach_flash(esp)
            with contextlib.redirect_stdout(io.StringIO()):
                found = detect_flash_size(esp)
                if header and board.chip == "esp8266":
                    seen = esp8266_header_size(bytes(esp.read_flash(0, 16)))
    except (esptool.FatalError, OSError) as err:
        from microsctl.flashing import checks

        wrong = checks.wrong_chip(err, port)  # "This chip is X, not Y": name the --board to use
        if wrong is not None:
            raise wrong from err
        text = str(err).strip().splitlines()
        raise MicrosError(f"cannot ask the chip its flash size: {text[0] if text else type(err).__name__}: "
                          "check the port, or pass --flash-size") from err
    if found not in SIZES:
        raise MicrosError(f"the chip on {port} did not report a flash size esptool knows ({found}): "
                          "pass it with --flash-size, e.g. --flash-size 4MB")
    print(f"[flash] the chip on {port} has {found} of flash", file=sys.stderr, flush=True)
    return found, seen


def for_chip(board, port, flash_size=None, before="default-reset", firmware_view=False):
    """(board sized for the connected chip, `--before` for the next esptool connection).
    --flash-size wins over detection (no connection then). `firmware_view`: the filesystem the
    firmware already on the chip uses; an ESP8266 whose image header disagrees with the chip is
    refused (its filesystem could not be where the chip's size puts it)."""
    if option(flash_size):
        return sized(board, flash_size), before
    found, header = detect(board, port, before, header=firmware_view)
    if firmware_view and board.chip == "esp8266" and header != found:
        raise MicrosError(
            f"the firmware on {port} believes {header or 'no'} flash (its image header at 0x0) but the chip has "
            f"{found}: the node's filesystem is not where settings would go; run 'invoke flash' to rewrite the "
            "header (or pass --flash-size to write for that size anyway)"
        )
    return sized(board, found), "no-reset"


def for_image(board, path, flash_size=None):
    """The virtual board: its flash is an image file, whose length is the chip's flash size
    (for a new file, None or missing: `flash_size`, else the board's)."""
    if option(flash_size):
        return sized(board, flash_size)
    if path is None or not Path(path).is_file():
        return sized(board, board.flash_size)
    return sized(board, Path(path).stat().st_size)
