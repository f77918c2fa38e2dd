"""The board database: boards/*/board.json, read through microsctl.firmware.boards."""
import ast
import json

import pytest

from microsctl import BOARDS, FROZEN, MicrosError
from microsctl.firmware import boards

EXPECTED = {"ESP8266_GENERIC", "ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3", "sim", "unix"}

# GPIOs a logical pin may use: MicroPython v1.28.0 has them (esp8266/machine_pin.c
# pyb_pin_obj[], esp32/machine_pin.h for the board's target) and they are not the
# SPI flash bus (ESP8266 GPIO 9/10 too: flash data lines on QIO modules), nor USB
# (the C3's USB Serial/JTAG on 18/19, the S3's USB D-/D+ on 19/20).
USABLE = {
    "esp8266": {0, 1, 2, 3, 4, 5, 12, 13, 14, 15, 16},
    "esp32": set(range(0, 40)) - {6, 7, 8, 9, 10, 11, 20, 24, 28, 29, 30, 31},
    "esp32c3": set(range(0, 11)) | {20, 21},
    "esp32s3": set(range(0, 49)) - {19, 20} - set(range(22, 38)),
}
OUTPUT_CAPABLE = {"esp32": set(range(0, 34))}  # 34..39 are input-only on the ESP32


def device_tables():
    """Each board's device pin table (the micros_board.py its manifest freezes, boards/<B>/ or,
    for the unix binary, the sim's: PINS), read without running it."""
    from microsctl.firmware import manifest

    out = {}
    for b in boards.all_boards():
        src = next(f.src for f in manifest.for_board(b).frozen if f.target == "micros_board.py")
        tree = ast.parse(src.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PINS":
                out[b.name] = _pairs(ast.literal_eval(node.value))
    return out


def _pairs(table):
    return [(k.strip(), int(v)) for k, _, v in (item.partition(":") for item in table.split(","))]


def test_every_board_is_there_and_loads():
    assert set(boards.names()) == EXPECTED
    for b in boards.all_boards():
        assert b.dir == BOARDS / b.name
        assert b.filesystem is not None and b.filesystem.type == "littlefs2"
        assert b.mpy.tag == "6.3"


@pytest.mark.parametrize(
    "alias,name",
    [("esp8266", "ESP8266_GENERIC"), ("esp32", "ESP32_GENERIC"), ("esp32c3", "ESP32_GENERIC_C3"),
     ("esp32s3", "ESP32_GENERIC_S3"), ("sim", "sim"), ("ESP32_GENERIC_S3", "ESP32_GENERIC_S3"),
     ("Esp8266", "ESP8266_GENERIC")],
)
def test_aliases(alias, name):
    assert boards.get(alias).name == name


def test_unknown_board_names_the_valid_ones():
    with pytest.raises(MicrosError) as e:
        boards.get("esp31")
    msg = str(e.value)
    assert msg.startswith("unknown board 'esp31': valid boards are ")
    for name in EXPECTED:
        assert name in msg
    assert "\n" not in msg


def test_unknown_variant():
    with pytest.raises(MicrosError, match="ESP32_GENERIC has no variant FOO: valid variants are"):
        boards.get("esp32", "FOO")


def test_reference_layout():
    """Offsets and geometry from the reference (flash-layouts.md)."""
    e8 = boards.get("esp8266")
    assert (e8.chip, e8.port, e8.flash_bytes) == ("esp8266", "esp8266", 4 << 20)
    assert (e8.firmware.file, e8.firmware.offset) == ("firmware.bin", 0)
    assert (e8.filesystem.offset, e8.filesystem.size, e8.filesystem.block_count) == (0x100000, 0x2FB000, 763)
    assert e8.mpy.arch == "xtensa"
    e32 = boards.get("esp32")
    assert (e32.firmware.offset, e32.filesystem.offset, e32.filesystem.size) == (0x1000, 0x200000, 0x200000)
    assert e32.mpy.arch == "xtensawin"
    assert boards.get("esp32", "OTA").filesystem.offset == 0x310000
    c3, s3 = boards.get("esp32c3"), boards.get("esp32s3")
    assert (c3.chip, c3.firmware.offset, c3.mpy.arch) == ("esp32c3", 0, "rv32imc")
    assert (s3.chip, s3.firmware.offset, s3.mpy.arch) == ("esp32s3", 0, "xtensawin")
    for b in boards.all_boards():
        fs = b.filesystem
        assert (fs.block_size, fs.read_size, fs.prog_size, fs.lookahead_size) == (4096, 32, 32, 32)


def test_sim_is_laid_out_like_a_4mb_esp32():
    sim, e32 = boards.get("sim"), boards.get("esp32")
    assert sim.is_virtual and sim.port == "unix"
    assert sim.filesystem == e32.filesystem
    assert sim.flash_bytes == e32.flash_bytes
    assert sim.firmware.file.endswith(".img")


def test_esp8266_variants_carry_the_irom0_budget():
    lengths = {v: boards.get("esp8266", v).irom0.length for v in ("", "FLASH_2M_ROMFS", "FLASH_1M", "FLASH_512K")}
    assert lengths == {"": 988 << 10, "FLASH_2M_ROMFS": 668 << 10, "FLASH_1M": 572 << 10, "FLASH_512K": 456 << 10}
    # the ESP8266 port manifest never freezes asyncio (its 2 MiB board manifest does, and
    # ours replaces that one); the ESP32 port manifest does
    for v in ("", "FLASH_2M_ROMFS", "FLASH_1M", "FLASH_512K"):
        assert not boards.get("esp8266", v).asyncio_frozen_by_port
    assert all(boards.get(b).asyncio_frozen_by_port for b in ("esp32", "esp32c3", "esp32s3"))
    assert boards.get("esp8266", "FLASH_2M_ROMFS").romfs.size == 0x50000


def test_pin_maps_equal_the_device_tables():
    tables = device_tables()
    for b in boards.all_boards():  # the device's table is the board's own, chosen at build time
        assert list(b.pins.items()) == tables[b.name], b.name
    assert tables["sim"] == tables["ESP32_GENERIC"]  # the plain virtual board is laid out like an ESP32


@pytest.mark.parametrize("name", ["esp8266", "esp32", "esp32c3", "esp32s3"])
def test_pin_maps_are_valid_gpios(name):
    b = boards.get(name)
    names = set(boards.get("esp32").pins)
    assert set(b.pins) <= names, "a board maps the logical names the ESP32 has, or fewer"
    usable = USABLE[b.chip]
    bad = {k: v for k, v in b.pins.items() if v not in usable}
    assert not bad, f"{b.name}: pins on GPIOs the chip cannot use: {bad}"
    out_ok = OUTPUT_CAPABLE.get(b.chip, usable)
    for k, v in b.pins.items():
        if not k.startswith("adc"):
            assert v in out_ok, f"{b.name}: {k} on input-only GPIO{v}"


def test_broken_board_json_is_one_clear_line(tmp_path):
    d = tmp_path / "X"
    d.mkdir()
    good = json.loads((BOARDS / "ESP32_GENERIC" / "board.json").read_text())
    good["name"] = "X"
    good["filesystem"]["offset"] = "0x200001"
    (d / "board.json").write_text(json.dumps(good))
    with pytest.raises(MicrosError, match="multiples of its block size"):
        boards.get("X", root=tmp_path)
    good["filesystem"]["offset"] = "0x300000"
    (d / "board.json").write_text(json.dumps(good))
    with pytest.raises(MicrosError, match="past the 4MB flash"):
        boards.get("X", root=tmp_path)
    del good["chip"]
    (d / "board.json").write_text(json.dumps(good))
    with pytest.raises(MicrosError, match="missing chip"):
        boards.get("X", root=tmp_path)


def test_invoke_boards_lists_them(capsys):
    from invoke import Context

    from microsctl import cli

    cli.boards(Context())
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert name in out
    assert "FLASH_2M_ROMFS" in out


def test_numbers_in_board_json_hypothesis():
    """Offsets are JSON numbers or hex strings; flash sizes NKB/NMB."""
    from hypothesis import given, strategies as st

    @given(st.integers(min_value=0, max_value=1 << 32))
    def offsets(n):
        assert boards._int(hex(n), "x") == boards._int(n, "x") == n

    @given(st.integers(min_value=1, max_value=64), st.sampled_from(["KB", "MB"]))
    def sizes(n, unit):
        assert boards.flash_bytes(f"{n}{unit}") == n * (1024 if unit == "KB" else 1 << 20)

    offsets()
    sizes()
    for bad in ("4 MB", "4mb", "MB", 4):
        with pytest.raises(ValueError):
            boards.flash_bytes(bad)
    for bad in (True, "0xZZ", None, 1.5):
        with pytest.raises(ValueError):
            boards._int(bad, "x")
