import json

import pytest

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.flashing import flash
from microsctl.flashing import fsimage
from microsctl.node.client import Shell
from microsctl.emulator.esprom import EspRom
from tests.conftest import free_port
from tests.flashkit import SECRETS, fake_firmware, mount_config, set_secrets


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)


FIRMWARE_SIZE = {"esp32": 1500 * 1024, "esp8266": 620 * 1024}


def dump(rom, tmp_path):
    p = tmp_path / "flash-dump.bin"
    p.write_bytes(bytes(rom.flash.data))
    return p


def test_argv_is_built_from_the_board_database():
    b = boards.get("esp32")
    argv = flash.write_argv(b, "/dev/ttyUSB0", [(b.filesystem.offset, "fs.img"), (b.firmware.offset, "fw.bin")], 921600, erase=True)
    assert argv == ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "921600", "--before", "default-reset",
                    "--after", "hard-reset", "write-flash", "--erase-all", "0x1000", "fw.bin", "0x200000", "fs.img"]
    chained = flash.write_argv(b, "COM3", [(b.filesystem.offset, "fs.img")], before="no-reset")
    assert flash.retry_argv(chained)[:8] == ["--chip", "esp32", "--port", "COM3", "--baud", "115200",
                                             "--before", "default-reset"]
    e = boards.get("esp8266")
    assert flash.write_argv(e, "COM3", [(e.filesystem.offset, "fs.img")])[-2:] == ["0x100000", "fs.img"]


@pytest.mark.parametrize("chip", ["esp32", "esp8266"])
def test_full_flash_then_provision_with_the_real_esptool(chip, secrets, tmp_path, capfd):
    b = boards.get(chip)
    fs = b.filesystem
    # about the size of the stock images: ESP32_GENERIC ~1.5 MB, ESP8266_GENERIC ~620 KB
    fw = fake_firmware(FIRMWARE_SIZE[chip], chip=chip)
    fw_path = tmp_path / "firmware.bin"
    fw_path.write_bytes(fw)
    with EspRom(chip, b.flash_bytes) as rom:
        flash.flash(b, rom.url, "lamp", firmware=fw_path, sets=["devfid=first01"])
        full_in = rom.bytes_in
        at = b.firmware.offset
        written = bytes(rom.flash.data[at : at + len(fw)])
        if chip == "esp8266":  # the header got the chip's real flash size (4MB: 0x40), see test_flash_geometry.py
            assert written[3] == 0x40 | (fw[3] & 0x0F)
            fw = fw[:3] + written[3:4] + fw[4:]
        assert written == fw
        img = bytes(rom.flash.data[fs.offset : fs.end])
        cfg = mount_config(dump(rom, tmp_path), fs.offset, fs)  # mounts in the real MicroPython
        assert cfg["devfid"] == "first01" and cfg["boothook"] == "gpio RGB(0,0,0)"
        assert cfg["stapwd"] == SECRETS["MICROS_STAPWD"]
        assert "SPI_FLASH_MD5" in rom.log  # esptool verified the writes

        rom.reset()  # the board's auto-reset into download mode
        rom.reset_counters()
        res = flash.provision(b, rom.url, "heartbeat", sets=["devfid=second01"], backup_to=tmp_path / "backups")
        assert "FLASH_BEGIN" not in rom.log or "FLASH_DEFL_BEGIN" in rom.log
        assert bytes(rom.flash.data[at : at + len(fw)]) == fw  # firmware untouched
        assert bytes(rom.flash.data[fs.offset : fs.end]) != img
        cfg = mount_config(dump(rom, tmp_path), fs.offset, fs)
        assert cfg["devfid"] == "second01" and cfg["timirq"] is True
        assert json.loads(res["backup"].read_text())["devfid"] == "first01"
        print(f"{chip}: full flash {full_in} bytes sent, provisioning {rom.bytes_in}")
        assert rom.bytes_in <= 0.05 * full_in, (rom.bytes_in, full_in)
    out = capfd.readouterr()
    for v in SECRETS.values():
        assert v not in out.out + out.err


def test_corrupted_block_is_detected_not_reported_as_success(secrets, tmp_path):
    b = boards.get("esp32")
    with EspRom("esp32", b.flash_bytes) as rom:
        rom.flash.stuck[b.filesystem.offset + 4096 * 3 + 17] = 0x10  # a worn cell in the filesystem
        with pytest.raises(MicrosError, match="verification failed"):
            flash.provision(b, rom.url, "default", read_back=False)


def test_failed_fast_write_is_retried_at_115200(secrets, tmp_path, capfd):
    b = boards.get("esp32")
    with EspRom("esp32", b.flash_bytes, max_baud=115200) as rom:
        res = flash.provision(b, rom.url, "default", baud=921600, read_back=False)
        assert res["argv"][res["argv"].index("--baud") + 1] == "115200"
        assert mount_config(dump(rom, tmp_path), b.filesystem.offset, b.filesystem)["devfid"] == "node01"
    assert "retrying at 115200" in capfd.readouterr().err


def test_bad_layout_is_refused_before_connecting(secrets, tmp_path):
    b = boards.get("esp32")
    big = tmp_path / "big.bin"
    big.write_bytes(fake_firmware(b.filesystem.offset))  # from 0x1000 it runs into the filesystem
    with EspRom("esp32", b.flash_bytes) as rom:
        with pytest.raises(MicrosError, match="runs into the filesystem"):
            flash.flash(b, rom.url, "default", firmware=big)
        with pytest.raises(MicrosError, match="unknown profile"):
            flash.flash(b, rom.url, "nosuch", firmware=big)
        with pytest.raises(MicrosError, match="larger than the"):
            flash.check_layout(b, fs_image_size=b.filesystem.size + 4096)
        assert rom.connections == 0


def test_sim_flash_boot_and_settings_survive_reboot(secrets, tmp_path):
    from microsctl.node.sim import SimNode

    img = tmp_path / "flash.img"
    b = boards.get("sim")
    flash.flash(b, img, "lamp", sets=["devfid=flashed01", f"socport={free_port()}"])
    assert img.stat().st_size == b.flash_bytes
    node = SimNode("f", root=tmp_path, flash=img)
    node.prepare("lamp")  # an existing image boots as it is
    argv = node.argv()
    assert argv[3].endswith("flashboot.py") and argv[4:7] == [str(img), str(b.filesystem.offset), str(b.filesystem.size)]
    if flash.default_firmware(b):  # invoke build --board sim made the core's ROMFS: it is the firmware
        assert argv[7:] == ["--romfs-at", str(b.firmware.offset)]
    node.start()
    try:
        with Shell(node.port) as sh:
            assert sh.prompt == "flashed01 $ "
            sh.cmd("conf")
            assert sh.cmd("devfid changed01").strip() == "Saved"
            sh.cmd("noconf")
            sh.cmd("reboot")
        node.wait_ready(10, boots=2)
        with Shell(node.port) as sh:
            assert sh.prompt == "changed01 $ "
    finally:
        node.stop()
    # the change went into the image file's littlefs partition
    assert mount_config(img, b.filesystem.offset, b.filesystem)["devfid"] == "changed01"
    res = flash.provision(b, img, "heartbeat", backup_to=tmp_path / "bk")
    assert json.loads(res["backup"].read_text())["devfid"] == "changed01"
    assert flash.read_sim_config(b, img)[0]["devfid"] == "heartbeat01"


def test_invoke_tasks_flash_and_provision(secrets, tmp_path, capsys):
    from invoke import Context, Exit

    from microsctl import cli

    b = boards.get("esp8266")
    fw = tmp_path / "fw.bin"
    fw.write_bytes(fake_firmware(64 * 1024, chip="esp8266"))
    with EspRom("esp8266", b.flash_bytes) as rom:
        cli.flash(Context(), board="esp8266", port=rom.url, profile="gpio", firmware=str(fw), set=["devfid=cli01"])
        rom.reset()
        cli.provision(Context(), board="esp8266", port=rom.url, profile="system", no_backup=True)
        assert fsimage.read_config(b.filesystem, bytes(rom.flash.data[b.filesystem.offset : b.filesystem.end]))["devfid"] == "system01"
        with pytest.raises(Exit, match="error: unknown board"):
            cli.flash(Context(), board="esp99", port=rom.url)
    cli.profiles(Context(), name="gpio")
    out = capsys.readouterr().out
    assert "gpio Servo(90)" in out and SECRETS["MICROS_APPWD"] not in out


@pytest.mark.parametrize("name", ["ESP32_GENERIC_C3", "ESP32_GENERIC_S3"])
def test_c3_s3_flash_leaves_pins_to_the_firmware(name, secrets, tmp_path):
    b = boards.get(name)
    fs = b.filesystem
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(fake_firmware(200 * 1024, chip=b.chip))
    with EspRom(b.chip, b.flash_bytes) as rom:  # chip detected by GET_SECURITY_INFO's chip ID
        flash.flash(b, rom.url, "lamp", firmware=fw)
        assert bytes(rom.flash.data[b.firmware.offset : b.firmware.offset + 200 * 1024]) == fw.read_bytes()
        cfg = mount_config(dump(rom, tmp_path), fs.offset, fs)
    # the board's pins come with the firmware (micros_board.py, frozen): none in the config
    assert cfg["pinmap"] == "n/a"
