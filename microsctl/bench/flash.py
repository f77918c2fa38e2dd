"""Full flash against settings-only provisioning, with the real esptool on the emulated ROM loader."""
import contextlib
import io
import tempfile
import time
from pathlib import Path

from microsctl.firmware import boards
from microsctl.flashing import flash as flashing
from microsctl.emulator import images
from microsctl.emulator.esprom import EspRom

# Sizes of the stock images (MicroPython v1.28 firmware.bin), used when no build is at hand.
STOCK_SIZE = {"ESP32_GENERIC": 1_600_000, "ESP8266_GENERIC": 640_000}
TARGET = 0.05


def synthetic_firmware(chip, size, seed=7):
    """A firmware.bin laid out as MicroPython's (valid esptool images: flash refuses anything
    else), with filler that zlib packs about as well as a real one (to ~65 %)."""
    return images.firmware(chip, size, seed)


def _quiet(fn, *a, **kw):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*a, **kw)


def _measure(rom, fn, *a, **kw):
    rom.reset()  # the auto-reset into download mode that starts each esptool run on a board
    rom.reset_counters()
    t0 = time.perf_counter()
    _quiet(fn, *a, **kw)
    return rom.bytes_in, rom.bytes_out, time.perf_counter() - t0


def one_board(name, tmp):
    b = boards.get(name)
    fw_path = flashing.default_firmware(b)
    origin = f"`{fw_path.name}` from invoke build" if fw_path else "synthetic, stock size"
    if fw_path is None:
        fw_path = Path(tmp) / f"{name}.bin"
        fw_path.write_bytes(synthetic_firmware(b.chip, STOCK_SIZE[name]))
    ask = lambda key: "bench-only-secret"  # noqa: E731 - never a real secret; nothing is printed
    with EspRom(b.chip, b.flash_bytes) as rom:
        full = _measure(rom, flashing.flash, b, rom.url, "lamp", firmware=fw_path, ask=ask)
        prov = _measure(rom, flashing.provision, b, rom.url, "heartbeat", backup_to=Path(tmp) / "backups", ask=ask)
    return b, fw_path.stat().st_size, origin, full, prov


def flash_bench(quick=False):
    names = ["ESP32_GENERIC"] if quick else ["ESP32_GENERIC", "ESP8266_GENERIC"]
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            b, fw_size, origin, full, prov = one_board(name, tmp)
            ratios.append((name, prov[0] / full[0], (prov[0] + prov[1]) / (full[0] + full[1])))
            rows.append(f"| {name} | full flash: firmware ({fw_size:,} B, {origin}) + filesystem | "
                        f"{full[0]:,} | {full[1]:,} | {full[2]:.2f} |")
            rows.append(f"| {name} | provisioning: config read-back + filesystem | {prov[0]:,} | {prov[1]:,} | {prov[2]:.2f} |")
    head = ("Real esptool 5.6 (`esptool.main`) against the emulated ROM loader (`microsctl/esprom.py`) on "
            "loopback, same run; bytes counted on the wire. Provisioning reads node_config.json back "
            "(only the littlefs blocks needed) in one session that uploads the flasher stub, then writes "
            "the filesystem region chained to that stub (`--before no-reset`).\n\n"
            "| board | operation | bytes host→chip | bytes chip→host | time s |\n|---|---|---:|---:|---:|\n")
    tail = "\n".join(
        f"- {n}: provisioning sends {r:.1%} of a full flash's bytes (target ≤ {TARGET:.0%}: "
        f"{'met' if r <= TARGET else 'MISSED'}); both directions together {both:.1%}"
        for n, r, both in ratios)
    return head + "\n".join(rows) + "\n\n" + tail + "\n"


def flash(quick=False):
    return flash_bench(quick)
