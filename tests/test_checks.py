"""Check before writing: the firmware is an image for the board's chip and fits its layout,
placeholder WiFi settings are warned about, a chip that is not the board's is named.

Images are made with esptool's own image classes as MicroPython v1.28.0's makeimg.py
scripts lay them out (microsctl/emulator/images.py) and flashed with the real esptool
against the emulated ROM loader; every refusal happens before a connection is made.
"""
import pytest

from microsctl import ROOT, MicrosError
from microsctl.emulator import images
from microsctl.emulator.esprom import EspRom
from microsctl.firmware import boards
from microsctl.flashing import checks
from microsctl.flashing import flash
from tests.flashkit import set_secrets


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)


def refused(board, data, tmp_path, match, name="firmware.bin"):
    """flash.flash must refuse `data` with `match` before connecting."""
    fw = tmp_path / name
    fw.write_bytes(data)
    with EspRom(board.chip, board.flash_bytes) as rom:
        with pytest.raises(MicrosError, match=match) as exc:
            flash.flash(board, rom.url, "default", firmware=fw)
        assert rom.connections == 0
        assert rom.flash.data == b"\xff" * board.flash_bytes
    return str(exc.value)


def test_readme_is_not_firmware(secrets, tmp_path):
    b = boards.get("esp32")
    msg = refused(b, (ROOT / "README.md").read_bytes(), tmp_path, r"README.md is not a firmware image", "README.md")
    assert "0x23" in msg and "invoke build --board esp32" in msg and "\n" not in msg


@pytest.mark.parametrize("board,chip,hint", [
    ("esp32", "esp32c3", "--board esp32c3"),
    ("esp32c3", "esp32s3", "--board esp32s3"),
    ("esp32s3", "esp32", "--board esp32"),
    ("esp32", "esp8266", "--board esp8266"),
    ("esp8266", "esp32", "--board esp32"),
])
def test_image_for_another_chip_is_refused(board, chip, hint, secrets, tmp_path):
    b = boards.get(board)
    msg = refused(b, images.firmware(chip, 300_000), tmp_path, "is an image for the")
    assert checks.chip_title(chip) in msg and hint in msg


@pytest.mark.parametrize("board", ["esp32", "esp32c3", "esp32s3", "esp8266"])
def test_every_boards_own_image_passes(board):
    b = boards.get(board)
    checks.check_firmware(b, images.firmware(b.chip, 400_000), "firmware.bin")


def test_damaged_app_is_refused(secrets, tmp_path):
    b = boards.get("esp32")
    data = bytearray(images.firmware("esp32", 300_000))
    data[0x10000 - 0x1000 + 0x1000] ^= 0x40  # a bit inside the app's first segment
    refused(b, bytes(data), tmp_path, "damaged, its (checksum|appended SHA-256)")


def test_damaged_or_short_esp8266_firmware_is_refused(secrets, tmp_path):
    b = boards.get("esp8266")
    data = images.firmware("esp8266", 300_000)
    bad = bytearray(data)
    bad[0x20000] ^= 1  # in irom0: only MicroPython's own MD5 (makeimg.py) covers it
    refused(b, bytes(bad), tmp_path, "damaged or cut short")
    refused(b, data[:200_000], tmp_path, "damaged or cut short")
    refused(b, data[:0x8000], tmp_path, "ends before 0x9000")


def test_app_alone_is_not_firmware_bin(secrets, tmp_path):
    b = boards.get("esp32")
    refused(b, images.esp32_firmware("esp32", 300_000, app_only=True), tmp_path, "application image .*micropython.bin")


def test_bootloader_alone_is_refused(secrets, tmp_path):
    b = boards.get("esp32")
    refused(b, images.firmware("esp32", 300_000)[:0x6000], tmp_path, "ends before the partition table")


def test_partition_table_decides_where_the_filesystem_is(secrets, tmp_path):
    """ports/esp32/main.c puts vfs after the last partition: the OTA table's is at 0x310000."""
    ota = images.firmware("esp32", 300_000, table="ota")
    msg = refused(boards.get("esp32"), ota, tmp_path, "puts the filesystem at 0x310000")
    assert "--variant" in msg
    checks.check_firmware(boards.get("esp32", "OTA"), ota, "firmware.bin")
    assert checks.fs_offset_of(checks.partitions(images.partition_table(images.PARTITIONS["default"]))) == 0x200000


def test_app_larger_than_its_partition_is_refused(secrets, tmp_path):
    b = boards.get("esp32")
    rows = [r if r[0] != "factory" else ("factory", 0, 0, 0x10000, 0x20000) for r in images.PARTITIONS["default"]]
    rows.append(("spare", 1, 0x81, 0x30000, 0x1D0000))  # the table still ends at 0x200000
    images.PARTITIONS["small"] = rows
    try:
        refused(b, images.firmware("esp32", 300_000, table="small"), tmp_path, "larger than its partition factory")
    finally:
        del images.PARTITIONS["small"]


def test_sim_firmware_must_be_romfs(secrets, tmp_path):
    b = boards.get("sim")
    fw = tmp_path / "fw.img"
    fw.write_bytes(images.firmware("esp32", 100_000))
    with pytest.raises(MicrosError, match="not a ROMFS image"):
        flash.flash(b, tmp_path / "flash.img", "default", firmware=fw)
    assert not (tmp_path / "flash.img").exists()


# -- WiFi placeholders ------------------------------------------------------------------

def test_placeholder_wifi_warns_of_access_point(secrets, tmp_path, capfd):
    b = boards.get("esp8266")
    fw = tmp_path / "fw.bin"
    fw.write_bytes(images.firmware("esp8266", 100_000))
    with EspRom("esp8266", b.flash_bytes) as rom:
        flash.flash(b, rom.url, "lamp", firmware=fw)
        err = capfd.readouterr().err
        assert "staessid is still the placeholder 'your_wifi_name': the node will come up as an access point " \
               "named 'lamp01'" in err
        rom.reset()
        flash.provision(b, rom.url, "gpio", sets=["staessid=homenet"], read_back=False)
        assert "access point" not in capfd.readouterr().err


def test_wifi_warnings_follow_net_py():
    assert checks.wifi_warnings({"staessid": "", "devfid": "n1"})[0].startswith("staessid is still the placeholder")
    assert "falls back to an access point named 'n1'" in checks.wifi_warnings(
        {"staessid": "home", "stapwd": "your_wifi_passwd", "devfid": "n1"})[0]
    assert checks.wifi_warnings({"staessid": "home", "stapwd": "s3cret-pw", "devfid": "n1"}) == []


# -- the chip that answers ----------------------------------------------------------------

@pytest.mark.parametrize("board,chip,answer,hint", [
    ("esp32", "esp8266", "ESP8266", "--board esp8266"),
    ("esp8266", "esp32", "ESP32", "--board esp32"),
    ("esp32s3", "esp32c3", "ESP32-C3", "--board esp32c3"),
])
def test_wrong_chip_is_named_with_the_right_board(board, chip, answer, hint, secrets, tmp_path):
    b = boards.get(board)
    fw = tmp_path / "fw.bin"
    fw.write_bytes(images.firmware(b.chip, 100_000))
    with EspRom(chip, 4 * 1024 * 1024) as rom:
        with pytest.raises(MicrosError, match=f"the chip that answered on {rom.url} is an {answer}, ") as exc:
            flash.flash(b, rom.url, "default", firmware=fw)
        assert hint in str(exc.value)
        assert rom.connections == 1  # not retried at another baud rate
        assert rom.flash.data == b"\xff" * rom.flash.size
    # (a fresh chip: esptool leaves the refused port open until its objects are collected)
    with EspRom(chip, 4 * 1024 * 1024) as rom:
        with pytest.raises(MicrosError, match=f"is an {answer}, .*{hint}"):
            flash.provision(b, rom.url, "default", backup_to=tmp_path / "bk")
        assert rom.flash.data == b"\xff" * rom.flash.size
