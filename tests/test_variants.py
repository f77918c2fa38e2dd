"""OTA board variants: MicroPython v1.28.0's ESP32 `OTA` variant in the board database, built
(BOARD_VARIANT=OTA), flashed as ESP-IDF flashes an OTA project, booted by the models.

Upstream facts, read again from the v1.28.0 sources where the mirror is here:
ports/esp32/boards/<BOARD>/board.json ("variants"), ports/esp32/boards/ESP32_GENERIC/
mpconfigvariant_OTA.cmake + sdkconfig.ota (CONFIG_PARTITION_TABLE_CUSTOM_FILENAME),
ports/esp32/boards/sdkconfig.base (the default table), ports/esp32/partitions-*.csv,
ports/esp32/makeimg.py (firmware.bin: bootloader, table at 0x8000, app at the first app
partition), ports/esp32/main.c (vfs from the end of the last partition).
"""
import json
import re
import subprocess

import pytest

from microsctl import ROOT, MicrosError
from microsctl.emulator import boot as model
from microsctl.emulator import images
from microsctl.emulator.esprom import EspRom
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.flashing import checks, flash, layout
from tests.flashkit import set_secrets
from tests.test_cli import INVOKE
from tests.test_flash_geometry import _csv_rows, _upstream

MB = 1 << 20
ESP32_BOARDS = ["ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3"]


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)


def _sdkconfig_table(text):
    m = re.search(r'^CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="([^"]+)"', text, re.M)
    return m.group(1) if m else None


def _fw(tmp_path, table="ota", size=1500 * 1024, name="firmware.bin"):
    path = tmp_path / name
    path.write_bytes(images.firmware("esp32", size, table=table))
    return path


# -- the board database against upstream ------------------------------------------------

@pytest.mark.parametrize("name", ESP32_BOARDS)
def test_ota_variants_are_the_ones_micropython_has(name):
    """A board has an OTA variant here exactly when ports/esp32/boards/<BOARD>/board.json has one
    (v1.28.0: ESP32_GENERIC only; not the C3, not the S3), and every table is upstream's CSV."""
    up = json.loads(_upstream(f"ports/esp32/boards/{name}/board.json"))
    b = boards.get(name)
    assert ("OTA" in up.get("variants", {})) == (b.variant_named("ota") is not None)
    assert set(b.variants) == set(up.get("variants", {})) - {"D2WD", "UNICORE"}  # the ones micrOS offers
    board_cmake = _upstream(f"ports/esp32/boards/{name}/mpconfigboard.cmake")
    for v in ("",) + b.variants:
        # SDKCONFIG_DEFAULTS in order, the board's then the variant's: the last table set wins
        cmake = board_cmake + (_upstream(f"ports/esp32/boards/{name}/mpconfigvariant_{v}.cmake") if v else "")
        tables = [_sdkconfig_table(_upstream(f"ports/esp32/{f}"))
                  for f in re.findall(r"(boards/(?:\w+/)?sdkconfig\.\w+)", cmake)]
        want = [t for t in tables if t][-1]
        pt = b.with_variant(v).partitions
        assert pt.table == want, f"{name}-{v}"
        assert [r.binary for r in pt.rows] == _csv_rows(_upstream(f"ports/esp32/{want}"))
    assert b.partitions.table == "partitions-4MiBplus.csv"


def test_the_ota_variant_places_the_filesystem_after_the_second_slot():
    """partitions-4MiB-ota.csv ends at 0x310000: the vfs partition runs from there to the end of
    flash (ports/esp32/main.c), 0xF0000 on a 4 MB chip; computed from the table, not stated."""
    b = boards.get("esp32", "ota")
    assert (b.variant, b.full_name) == ("OTA", "ESP32_GENERIC-OTA")
    assert [(s.name, s.offset, s.size) for s in b.partitions.ota_slots] == [
        ("ota_0", 0x10000, 0x180000), ("ota_1", 0x190000, 0x180000)]
    assert (b.partitions.otadata.offset, b.partitions.otadata.size) == (0xD000, 0x2000)
    assert (b.filesystem.offset, b.filesystem.size, b.filesystem.block_count) == (0x310000, 0xF0000, 240)
    raw = json.loads((ROOT / "boards" / "ESP32_GENERIC" / "board.json").read_text())
    assert "filesystem" not in raw["variants"]["OTA"]  # the table places it


def test_a_stated_offset_must_agree_with_the_table(tmp_path):
    d = tmp_path / "X"
    d.mkdir()
    raw = json.loads((ROOT / "boards" / "ESP32_GENERIC" / "board.json").read_text())
    raw["name"] = "X"
    raw["variants"]["OTA"]["filesystem"] = {"offset": "0x300000"}
    (d / "board.json").write_text(json.dumps(raw))
    with pytest.raises(MicrosError, match=r"offset 0x300000 is not where partitions-4MiB-ota.csv ends \(0x310000\)"):
        boards.get("X", "OTA", root=tmp_path)


@pytest.mark.parametrize("board", ["esp32c3", "esp32s3", "esp8266"])
def test_a_board_without_an_ota_variant_refuses_it_in_one_line(board):
    with pytest.raises(MicrosError) as exc:
        boards.get(board, "ota")
    msg = str(exc.value)
    assert "\n" not in msg and "has no variant OTA" in msg
    assert "ESP32_GENERIC (esp32)" in msg and "--board esp32 --variant ota" in msg


@pytest.mark.parametrize("task", [["build", "--dry-run"], ["flash", "--port", "/dev/null"]])
def test_invoke_refuses_ota_on_the_c3_in_one_line(task):
    res = subprocess.run(INVOKE + [task[0], "--board", "esp32c3", "--variant", "ota", *task[1:]], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines == ["error: board ESP32_GENERIC_C3 has no variant OTA (its variants: none); MicroPython v1.28.0 has "
                     "it for ESP32_GENERIC (esp32): e.g. --board esp32 --variant ota"]


def test_invoke_boards_shows_the_ota_variant():
    res = subprocess.run(INVOKE + ["boards"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    rows = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.strip()}
    assert "OTA (2 app slots of 1536 KB, filesystem 0x310000+0xf0000)" in rows["ESP32_GENERIC"]
    assert "OTA" not in rows["ESP32_GENERIC_C3"] and "OTA" not in rows["ESP32_GENERIC_S3"]


# -- build ---------------------------------------------------------------------------------

def test_build_argv_for_the_ota_variant():
    """ports/esp32/Makefile: BOARD_VARIANT picks boards/ESP32_GENERIC/mpconfigvariant_OTA.cmake."""
    argv = build.make_argv(boards.get("esp32", "ota"), 2)
    assert argv[:6] == ["make", "-C", "ports/esp32", "-j2", "BOARD=ESP32_GENERIC", "BOARD_VARIANT=OTA"]
    assert "BOARD_VARIANT" not in " ".join(build.make_argv(boards.get("esp32"), 2))
    assert "ifdef BOARD_VARIANT" in _upstream("ports/esp32/Makefile")
    res = subprocess.run(INVOKE + ["build", "--board", "esp32", "--variant", "ota", "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "make -C ports/esp32 -j" in out and "BOARD=ESP32_GENERIC BOARD_VARIANT=OTA" in out
    assert "build/ESP32_GENERIC-OTA" in out


# -- checks ----------------------------------------------------------------------------------

def test_checks_accept_the_ota_table_only_with_the_variant():
    ota_fw = images.firmware("esp32", 1500 * 1024, table="ota")
    checks.check_firmware(boards.get("esp32", "ota"), ota_fw, "firmware.bin")
    with pytest.raises(MicrosError, match="partitions-4MiB-ota.csv, the OTA variant's .*: pick the --variant it was built for, --variant ota"):
        checks.check_firmware(boards.get("esp32"), ota_fw, "firmware.bin")
    with pytest.raises(MicrosError, match="partitions-4MiBplus.csv, the default variant's .*: leave out --variant"):
        checks.check_firmware(boards.get("esp32", "ota"), images.firmware("esp32", 400_000), "firmware.bin")
    checks.check_firmware(boards.get("esp32", "spiram"), images.firmware("esp32", 400_000), "firmware.bin")


def test_the_app_must_fit_every_ota_slot(monkeypatch):
    """A firmware update writes the slot not running: an app that fits ota_0 but not ota_1 is
    refused before it is flashed (sdkconfig.ota: 'Reduce firmware size to fit in the OTA partition')."""
    assert "Reduce firmware size to fit in the OTA partition" in _upstream("ports/esp32/boards/ESP32_GENERIC/sdkconfig.ota")
    rows = [r if r[0] != "ota_1" else ("ota_1", 0, 0x11, 0x190000, 0x100000) for r in images.PARTITIONS["ota"]]
    monkeypatch.setitem(images.PARTITIONS, "small-ota1", rows)
    fw = images.firmware("esp32", 0x130000, table="small-ota1")  # app ~1.15 MB: fits 0x180000, not 0x100000
    with pytest.raises(MicrosError, match=r"does not fit the OTA slot ota_1 \(1048576 bytes\)"):
        checks.check_firmware(boards.get("esp32", "ota"), fw, "firmware.bin")


# -- flashing and booting --------------------------------------------------------------------

def test_flash_parts_of_the_ota_variant_are_idf_first_flash():
    """ESP-IDF's first flash of an OTA project: bootloader, partition table, ota_data_initial.bin
    (0xFF over otadata) and the app at ota_0; other boards keep firmware.bin whole."""
    b = boards.get("esp32", "ota")
    fw = images.firmware("esp32", 1500 * 1024, table="ota")
    parts = layout.firmware_parts(b, fw)
    assert [(off, name) for off, name, _ in parts] == [
        (0x1000, "bootloader.bin"), (0x8000, "partition-table.bin"), (0xD000, "ota_data_initial.bin"),
        (0x10000, "micropython.bin")]
    data = dict((off, d) for off, _, d in parts)
    assert data[0xD000] == b"\xff" * 0x2000
    assert fw[0x7000 : 0x7000 + 0xC00] == data[0x8000] and checks.partitions(data[0x8000])[3][0] == "ota_0"
    assert fw.startswith(data[0x1000]) and fw[0xF000:].startswith(data[0x10000])
    assert checks.image_length("esp32", data[0x10000]) == len(data[0x10000])
    for name in ("esp32", "esp32c3", "esp8266"):
        plain = boards.get(name)
        fw2 = images.firmware(plain.chip, 400_000)
        assert layout.firmware_parts(plain, fw2) == [(plain.firmware.offset, "firmware.bin", fw2)]


@pytest.mark.parametrize("size", [4 * MB, 16 * MB])
def test_flash_ota_variant_boots_ota_0_and_mounts_the_settings(secrets, tmp_path, size):
    """A node that had switched to ota_1 by a firmware OTA is flashed over USB with the OTA
    variant: the bootloader starts ota_0 (erased otadata), where the new app is, and the port
    mounts the settings from 0x310000 to the chip's end (ports/esp32/main.c, _boot.py)."""
    b = boards.get("esp32", "ota")
    fw = _fw(tmp_path)
    with EspRom("esp32", size) as rom:
        rom.flash.program(0xD000, model.ota_select_entry(1))  # the otadata of a node running ota_1:
        rom.flash.program(0xE000, model.ota_select_entry(2))  # seq 2 -> ota_[(2-1) % 2]
        rom.flash.program(0x190000, b"\xe9old app in ota_1")
        parts = images.PARTITIONS["ota"]
        assert model.boot_app(bytes(rom.flash.data[:0x8000]) + images.partition_table(parts) +
                              bytes(rom.flash.data[0x8C00:]), parts) == "ota_1"
        res = flash.flash(b, rom.url, "lamp", firmware=fw, sets=["devfid=ota-node"])
        offsets = [a for a in res["argv"][res["argv"].index("write-flash") + 1 :: 2] if a.startswith("0x")]
        assert offsets == ["0x1000", "0x8000", "0xd000", "0x10000", "0x310000"]
        dump = bytes(rom.flash.data)
    raw = fw.read_bytes()
    assert dump[0xD000:0xF000] == b"\xff" * 0x2000
    assert dump[0x10000 : 0x10000 + len(raw) - 0xF000].rstrip(b"\xff") == raw[0xF000:].rstrip(b"\xff")
    assert dump[0x190000:0x190011] == b"\xe9old app in ota_1"  # the other slot is not written
    booted = model.boot("esp32", dump)
    assert booted.app == "ota_0"
    assert (booted.start, booted.blocks) == (0x310000, (size - 0x310000) // 4096)
    assert booted.outcome == "mounted" and booted.config()["devfid"] == "ota-node"


def test_invoke_flash_with_variant_ota(secrets, tmp_path):
    """`invoke flash --variant ota` as a user types it (the emulated ROM loader on a socket)."""
    import os

    fw = _fw(tmp_path)
    with EspRom("esp32", 4 * MB) as rom:
        res = subprocess.run(INVOKE + ["flash", "--board", "esp32", "--variant", "ota", "--port", rom.url,
                                       "--firmware", str(fw), "--profile", "lamp", "--set", "devfid=cli-ota"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ))
        dump = bytes(rom.flash.data)
    assert res.returncode == 0, res.stderr
    assert "0x1000 " in res.stderr and " 0xd000 " in res.stderr and " 0x310000 " in res.stderr
    booted = model.boot("esp32", dump)
    assert booted.app == "ota_0" and booted.outcome == "mounted" and booted.config()["devfid"] == "cli-ota"


def test_the_boot_model_picks_the_slot_as_the_idf_bootloader():
    """bootloader_utility_get_selected_boot_partition: highest valid ota_seq wins; a bad crc or an
    ABORTED/INVALID state does not count; nothing valid: factory, else ota_0."""
    ota, plain = images.PARTITIONS["ota"], images.PARTITIONS["default"]

    def flash_with(e0=b"", e1=b""):
        f = bytearray(b"\xff" * 0x10000)
        f[0xD000 : 0xD000 + len(e0)] = e0
        f[0xE000 : 0xE000 + len(e1)] = e1
        return bytes(f)

    assert model.boot_app(flash_with(), ota) == "ota_0"
    assert model.boot_app(flash_with(model.ota_select_entry(1)), ota) == "ota_0"
    assert model.boot_app(flash_with(model.ota_select_entry(1), model.ota_select_entry(2)), ota) == "ota_1"
    assert model.boot_app(flash_with(model.ota_select_entry(3), model.ota_select_entry(2)), ota) == "ota_0"
    bad = bytearray(model.ota_select_entry(2))
    bad[-1] ^= 1
    assert model.boot_app(flash_with(model.ota_select_entry(1), bytes(bad)), ota) == "ota_0"
    aborted = model.ota_select_entry(2, model.OTA_IMG_ABORTED)
    assert model.boot_app(flash_with(model.ota_select_entry(1), aborted), ota) == "ota_0"
    assert model.boot_app(flash_with(), plain) == "factory"
    assert model.ota_select_crc(1) == 0x4743989A  # as IDF's otatool.py computes it


def test_usb_update_of_a_node_running_ota_1_boots_the_new_firmware(secrets, tmp_path):
    """`invoke update --variant ota` on a node whose bootloader starts ota_1 (after a firmware
    OTA): the new app goes to ota_0 and otadata is erased as on first flash, so the bootloader
    starts the new firmware (not the old ota_1); the settings stay where they were (0x310000)."""
    from microsctl.flashing import update

    b = boards.get("esp32", "ota")
    old, new = _fw(tmp_path, name="old.bin"), tmp_path / "new.bin"
    new.write_bytes(images.firmware("esp32", 1400 * 1024, seed=7, table="ota"))
    with EspRom("esp32", 4 * MB) as rom:
        flash.flash(b, rom.url, "lamp", firmware=old, sets=["devfid=ota-upd"])
        rom.flash.program(0xD000, model.ota_select_entry(1))
        rom.flash.program(0xE000, model.ota_select_entry(2))
        assert rom.boot().app == "ota_1"
        out = update.update(b, rom.url, firmware=new, backup_to=tmp_path / "bk")
        assert out["mode"] == update.KEEP
        res = rom.boot()
        dump = bytes(rom.flash.data)
    app = layout.firmware_parts(b, new.read_bytes())[-1][2]
    assert res.app == "ota_0" and dump[0x10000 : 0x10000 + len(app)] == app
    assert res.outcome == "mounted" and res.config()["devfid"] == "ota-upd" and res.start == 0x310000


@pytest.mark.parametrize("flashed,given,hint", [("ota", None, "pass --variant ota"),
                                                 (None, "ota", "leave out --variant")])
def test_provision_refuses_a_node_of_another_variant(secrets, tmp_path, flashed, given, hint):
    """Settings alone go where --board's table puts the filesystem: on a node flashed with the
    OTA table, 0x200000 is inside ota_1 (partitions-4MiB-ota.csv), so the default board's
    provisioning is refused after reading the node's table, before a byte is written."""
    node_board = boards.get("esp32", flashed)
    with EspRom("esp32", 4 * MB) as rom:
        flash.flash(node_board, rom.url, "lamp", firmware=_fw(tmp_path, table="ota" if flashed else "default"),
                    sets=["devfid=keep-me"])
        before = bytes(rom.flash.data)
        with pytest.raises(MicrosError, match=f"keeps its filesystem at .*: {hint}; nothing was written"):
            flash.provision(boards.get("esp32", given), rom.url, "heartbeat", backup_to=tmp_path / "bk")
        assert bytes(rom.flash.data) == before
        flash.provision(node_board, rom.url, "heartbeat", backup_to=tmp_path / "bk")
        res = rom.boot()
    # with the node's own variant the settings land where its firmware mounts them
    assert res.outcome == "mounted" and res.config()["devfid"] == "heartbeat01"
    assert res.start == node_board.filesystem.offset
