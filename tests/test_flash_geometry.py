"""The settings survive the board's first boot, whatever the chip's flash size.

Each test flashes through the real esptool (v5) into our ROM-loader emulator with the chip's
flash size, then boots the dump with the boot model (microsctl/emulator/boot.py), which does
what MicroPython v1.28.0 does with it:
- ESP8266: esp.flash_size() is the image header's size (ports/esp8266/modesp.c), the block
  device is ports/esp8266/modules/flashbdev.py's (0x100000 to size - 20 KiB),
  ports/esp8266/modules/_boot.py mounts it and falls back to inisetup.py;
- ESP32 family: the `vfs` partition runs from the end of the partition table's last partition
  to the physical end of flash (ports/esp32/main.c, boardctrl_startup), mounted by
  ports/esp32/modules/_boot.py, inisetup.py on failure;
- littlefs (lib/littlefs/lfs2.c lfs2_mount, through extmod/vfs_lfsx.c) refuses an image whose
  block count differs: the real MicroPython unix port mounts the bytes.
"""
import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsctl import ROOT, MicrosError
from microsctl.emulator.boot import boot, esp8266_flash_size
from microsctl.emulator.esprom import EspRom
from microsctl.firmware import boards
from microsctl.flashing import flash
from microsctl.flashing import fsimage
from microsctl.flashing import geometry
from microsctl.emulator import images
from tests.flashkit import SECRETS, set_secrets

MB = 1024 * 1024
ESP32_BOARDS = ["ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3"]
CASES = [(n, s) for n in ESP32_BOARDS for s in (4, 8, 16)] + [("ESP8266_GENERIC", 2), ("ESP8266_GENERIC", 4)]


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)


def firmware(b, tmp_path, table="default"):
    """A firmware.bin like the port's (emulator/images.py): ESP8266 with the 1MB header esptool
    elf2image writes by default; ESP32 family with bootloader, partitions-4MiBplus.csv table, app."""
    fw = images.firmware(b.chip, 620 * 1024 if b.chip == "esp8266" else 1500 * 1024,
                         **({} if b.chip == "esp8266" else {"table": table}))
    path = tmp_path / "firmware.bin"
    path.write_bytes(fw)
    return path


@pytest.mark.parametrize("name,mb", CASES)
def test_flashed_settings_mount_at_boot(name, mb, secrets, tmp_path):
    b = boards.get(name)
    fw = firmware(b, tmp_path)
    with EspRom(b.chip, mb * MB) as rom:
        flash.flash(b, rom.url, "lamp", firmware=fw, sets=[f"devfid=boot{mb}mb"])
        res = rom.boot()
        assert res.flash_size == mb * MB  # ESP8266: the header now says the chip's size
        assert res.outcome == "mounted", res.said
        cfg = res.config()
        assert cfg["devfid"] == f"boot{mb}mb" and cfg["stapwd"] == SECRETS["MICROS_STAPWD"]
        assert "main.py" in res.files
        if b.chip == "esp8266":  # flashbdev.py: from 0x100000 to the size less 20 KiB of SDK data
            assert (res.start, res.blocks) == (0x100000, (mb * MB - 20480) // 4096 - 256)
        else:  # main.c: from the end of the factory app (0x200000) to the end of flash
            assert (res.start, res.blocks) == (0x200000, (mb * MB - 0x200000) // 4096)

        # provisioning rewrites the region the firmware uses, and the next boot finds it
        rom.reset()
        out = flash.provision(b, rom.url, "heartbeat", sets=[f"devfid=prov{mb}mb"], backup_to=tmp_path / "bk")
        assert json.loads(out["backup"].read_text())["devfid"] == f"boot{mb}mb"
        res = boot(b.chip, rom.flash.data)
        assert res.outcome == "mounted", res.said
        assert res.config()["devfid"] == f"prov{mb}mb" and res.config()["timirq"] is True


def test_esp8266_1mb_header_on_a_4mb_chip(secrets, tmp_path):
    """Today's case: firmware.bin's header says 1MB (elf2image's default), the module has 4 MB."""
    b = boards.get("esp8266")
    fw = firmware(b, tmp_path)
    assert esp8266_flash_size(fw.read_bytes()) == 1 * MB

    # as flashed before: header kept (esptool v5's default), image for board.json's 4 MB
    with EspRom("esp8266", 4 * MB) as rom:
        img = fsimage.write_atomic(tmp_path / "fs.img", fsimage.image_for(b, {"devfid": "lost01"}))
        flash.esptool_main(flash.write_argv(b, rom.url, [(0, fw), (b.filesystem.offset, img)]))
        res = boot("esp8266", rom.flash.data)
        # flashbdev.py: (1 MB - 20 KiB) // 4096 - 256 = -5 blocks; the mount fails, and
        # inisetup.check_bootsec() finds block 0 written: the node loops on "filesystem corrupt"
        assert res.flash_size == 1 * MB and res.blocks == -5
        assert res.outcome == "corrupt" and res.config() is None

    # with the fix: esptool is told the size it detected, the header says 4MB, the settings mount
    with EspRom("esp8266", 4 * MB) as rom:
        out = flash.flash(b, rom.url, "lamp", firmware=fw, sets=["devfid=kept01"])
        assert out["argv"][out["argv"].index("--flash-size") + 1] == "4MB"
        assert esp8266_flash_size(bytes(rom.flash.data[:4])) == 4 * MB
        res = boot("esp8266", rom.flash.data)
        assert res.outcome == "mounted" and res.config()["devfid"] == "kept01"


def test_esp32_image_for_4mb_on_an_8mb_chip_is_lost(secrets, tmp_path):
    """What happened before: the 4 MB image (512 blocks) in an 8 MB chip's 1536-block vfs."""
    b = boards.get("esp32")
    fw = firmware(b, tmp_path)
    with EspRom("esp32", 8 * MB) as rom:
        img = fsimage.write_atomic(tmp_path / "fs.img", fsimage.image_for(b, {"devfid": "lost02"}))
        flash.esptool_main(flash.write_argv(b, rom.url, [(b.firmware.offset, fw), (b.filesystem.offset, img)]))
        res = boot("esp32", rom.flash.data)
        assert res.blocks == 1536 and res.outcome == "corrupt" and res.config() is None


def test_erased_filesystem_is_formatted_by_the_port(tmp_path):
    """The boot model reformats where inisetup.py does: block 0 erased -> mkfs, settings gone."""
    b = boards.get("esp32")
    flash_ = bytearray(b"\xff" * 4 * MB)
    fw = images.firmware("esp32", 300 * 1024)
    flash_[b.firmware.offset : b.firmware.offset + len(fw)] = fw
    res = boot("esp32", flash_)
    assert res.outcome == "formatted" and set(res.files) == {"boot.py"}


def test_flash_size_option_overrides_detection(secrets, tmp_path, capfd):
    b = boards.get("esp32s3")
    fw = firmware(b, tmp_path)
    with EspRom("esp32s3", 16 * MB) as rom:
        flash.flash(b, rom.url, "lamp", firmware=fw, flash_size="16mb")
        assert rom.connections == 1  # no flash-id session: the size was given
        assert boot("esp32s3", rom.flash.data).outcome == "mounted"
    assert "flash-id" not in capfd.readouterr().err
    with pytest.raises(MicrosError, match=r"--flash-size '5MB' is not a flash size: use one of"):
        flash.flash(b, "socket://127.0.0.1:9", "lamp", firmware=fw, flash_size="5MB")
    with pytest.raises(MicrosError, match="leaves no room"):
        geometry.sized(b, "2MB")  # the vfs partition starts at 0x200000


def test_cli_rejects_a_bad_flash_size_in_one_line(tmp_path):
    out = subprocess.run(["invoke", "flash", "--board", "esp32", "--port", "x", "--flash-size", "abc"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == ["error: --flash-size 'abc' is not a flash size: use one of "
                                                + ", ".join(geometry.SIZES)]


def test_provision_refuses_an_esp8266_whose_header_disagrees(secrets, tmp_path):
    """A node flashed before the fix (1MB header on 4 MB): its firmware would not find the
    settings where the chip's size puts them, so provisioning stops and writes nothing."""
    b = boards.get("esp8266")
    fw = firmware(b, tmp_path).read_bytes()
    with EspRom("esp8266", 4 * MB) as rom:
        rom.flash.program(0, fw)
        before = bytes(rom.flash.data)
        with pytest.raises(MicrosError, match="believes 1MB flash .* chip has 4MB"):
            flash.provision(b, rom.url, "lamp", backup_to=tmp_path / "bk")
        assert bytes(rom.flash.data) == before


def test_esp32_ota_variant_vfs_after_the_second_slot(secrets, tmp_path):
    """ESP32_GENERIC-OTA (partitions-4MiB-ota.csv): vfs from 0x310000 to the end of flash."""
    b = boards.get("esp32", "OTA")
    fw = firmware(b, tmp_path, table="ota")
    with EspRom("esp32", 8 * MB) as rom:
        flash.flash(b, rom.url, "lamp", firmware=fw, sets=["devfid=ota8"])
        res = boot("esp32", rom.flash.data)
        assert (res.start, res.blocks) == (0x310000, (8 * MB - 0x310000) // 4096)
        assert res.outcome == "mounted" and res.config()["devfid"] == "ota8"


@pytest.mark.parametrize("name", [n for n in boards.names() if n != "sim"])
def test_board_json_size_is_the_firmwares_at_its_flash_size(name):
    """board.json's filesystem size is what the port computes for the board's nominal flash."""
    b = boards.get(name)
    assert geometry.sized(b, b.flash_size).filesystem == b.filesystem


def test_sim_flash_image_follows_the_esp32_model(secrets, tmp_path):
    """The virtual board's flash image: an 8 MB image gets the vfs region to its end (6 MB,
    1536 blocks), and the node boots from it (ports/unix/flashboot.py, vfs.VfsLfs2)."""
    from microsctl.node.client import Shell
    from microsctl.node.sim import SimNode
    from tests.conftest import free_port
    from tests.flashkit import mount_config

    b = boards.get("sim")
    img = tmp_path / "flash.img"
    flash.flash(b, img, "lamp", sets=["devfid=sim8mb", f"socport={free_port()}"], flash_size="8MB")
    assert img.stat().st_size == 8 * MB
    fs = geometry.sized(b, "8MB").filesystem
    assert (fs.offset, fs.block_count) == (0x200000, 1536)
    assert mount_config(img, fs.offset, fs)["devfid"] == "sim8mb"  # the real MicroPython, 1536 blocks
    node = SimNode("g8", root=tmp_path, flash=img)
    node.prepare("lamp")
    assert node.argv()[4:7] == [str(img), str(fs.offset), str(fs.size)]
    node.start()
    try:
        with Shell(node.port) as sh:
            assert sh.prompt == "sim8mb $ "
    finally:
        node.stop()
    # provisioning keeps to the image's own size
    flash.provision(b, img, "heartbeat", backup_to=tmp_path / "bk")
    assert mount_config(img, fs.offset, fs)["devfid"] == "heartbeat01"


UPSTREAM = Path("/work/.mirror/micropython+micropython/repo")  # a git mirror of micropython, where there is one


def _upstream(path):
    out = subprocess.run(["git", "-C", str(UPSTREAM), "show", f"v1.28.0:{path}"], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"no MicroPython v1.28.0 sources here ({out.stderr.strip()[:80]})")
    return out.stdout


def _csv_rows(text):
    kinds = {"app": 0, "data": 1}
    subs = {"nvs": 2, "phy": 1, "factory": 0, "ota": 0, "ota_0": 0x10, "ota_1": 0x11}
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("#")[0].split(",")]
        if len(cells) >= 5 and cells[0]:
            rows.append((cells[0], kinds[cells[1]], subs[cells[2]], int(cells[3], 0), int(cells[4], 0)))
    return rows


def test_modelled_facts_match_micropython_v1_28_0():
    """The facts the boot model and geometry.py rest on, read again from the upstream files."""
    from microsctl.emulator import boot as model

    bdev = _upstream("ports/esp8266/modules/flashbdev.py")
    assert "size = esp.flash_size()" in bdev and "start_sec < 256" in bdev
    assert "bdev = FlashBdev(start_sec, (size - 20480) // FlashBdev.SEC_SIZE - start_sec)" in bdev
    assert boards.get("esp8266").filesystem.reserved_top == 20480
    ld = _upstream("ports/esp8266/boards/esp8266_2MiB.ld")
    assert "irom0_0_seg :  org = 0x40209000, len = 1M - 36K" in ld
    assert 0x40200000 + model.ESP8266_IROM0_ORG == 0x40209000 and model.ESP8266_IROM0_LEN == 1024 * 1024 - 36 * 1024
    assert "_firmware_size = ORIGIN(irom0_0_seg) + LENGTH(irom0_0_seg) - 0x40200000;" in _upstream(
        "ports/esp8266/boards/esp8266_common.ld")
    assert "return mp_obj_new_int_from_uint(flash->chip_size);" in _upstream("ports/esp8266/modesp.c")
    main = _upstream("ports/esp32/main.c")
    assert "esp_flash_get_physical_size(NULL, &esp_flash_default_chip->size);" in main
    assert "size_t size = esp_flash_default_chip->size - offset;" in main
    assert _csv_rows(_upstream("ports/esp32/partitions-4MiBplus.csv")) == images.PARTITIONS["default"]
    assert _csv_rows(_upstream("ports/esp32/partitions-4MiB-ota.csv")) == images.PARTITIONS["ota"]
    lfs = _upstream("lib/littlefs/lfs2.c")
    assert "superblock.block_count != lfs2->cfg->block_count" in lfs
    for port in ("esp8266", "esp32"):
        assert "inisetup.setup()" in _upstream(f"ports/{port}/modules/_boot.py")
        ini = _upstream(f"ports/{port}/modules/inisetup.py")
        assert "check_bootsec()" in ini and "vfs.VfsLfs2.mkfs(bdev)" in ini and "fs_corrupted()" in ini


@given(st.sampled_from(sorted(geometry.SIZES)), st.sampled_from(["", "B", "iB"]), st.booleans())
def test_flash_size_spellings(name, suffix, lower):
    typed = name[:-1] + suffix  # 4MB -> 4M, 4MB, 4MiB
    typed = typed.lower() if lower else typed
    assert geometry.parse(typed) == name and geometry.option(typed) == name


@given(st.text(max_size=12))
def test_anything_else_is_one_clear_line(text):
    try:
        name = geometry.parse(text)
    except MicrosError as err:
        assert "\n" not in str(err) and str(err).startswith("--flash-size ")
    else:
        assert name in geometry.SIZES
