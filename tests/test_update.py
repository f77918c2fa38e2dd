"""Firmware update over USB with the settings kept (microsctl/flashing/update.py).

Each test flashes a node through the real esptool v5 into a ROM-loader double, lets the node
"write" a user Load Module (as a shell upload would), then updates the firmware and boots the
dump with the boot model (microsctl/emulator/boot.py: MicroPython v1.28.0's
ports/esp8266/modules/flashbdev.py and ports/esp32/main.c for where the filesystem lies, the
ports' _boot.py/inisetup.py and VfsLfs2 on the real unix port for whether it mounts).
`invoke flash` of the same firmware is the old behaviour: the settings are replaced.
"""
import json

import pytest

from microsctl import MicrosError
from microsctl.emulator.boot import boot
from microsctl.emulator.esprom import EspRom
from microsctl.emulator import images
from microsctl.firmware import boards
from microsctl.flashing import flash, fsimage, geometry, update
from tests.flashkit import set_secrets

MB = 1024 * 1024
USER_LM = b"def hello():\n    return 'user LM kept'\n"


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)


def fw_file(tmp_path, b, seed, table="default"):
    kw = {} if b.chip == "esp8266" else {"table": table}
    data = images.firmware(b.chip, 620 * 1024 if b.chip == "esp8266" else 1500 * 1024, seed=seed, **kw)
    path = tmp_path / f"fw{seed}-{table}.bin"
    path.write_bytes(data)
    return path


def add_user_file(data, fs, name="LM_mine.py", body=USER_LM):
    """What the node does when a user uploads a Load Module: a file in its littlefs."""
    region = fsimage.update(fs, bytes(data[fs.offset : fs.end]), {name: body})
    data[fs.offset : fs.end] = region


def flashed_node(rom, b, tmp_path, devfid, flash_size=None, table="default"):
    flash.flash(b, rom.url, "lamp", firmware=fw_file(tmp_path, b, 1, table), sets=[f"devfid={devfid}"],
                flash_size=flash_size)
    res = rom.boot()
    assert res.outcome == "mounted", res.said
    fs = geometry.sized(b, flash_size or geometry.name_of(rom.flash.size)).filesystem
    add_user_file(rom.flash.data, fs)
    rom.reset()


def app_bytes(rom, b, path):
    """The firmware is on the chip (ESP8266: bytes 2-3 of the header are esptool's to set)."""
    fw = path.read_bytes()
    got = bytes(rom.flash.data[b.firmware.offset : b.firmware.offset + len(fw)])
    return got[4:] == fw[4:] and got[:2] == fw[:2]


@pytest.mark.parametrize("name,mb", [("ESP32_GENERIC", 4), ("ESP32_GENERIC_C3", 8), ("ESP8266_GENERIC", 4)])
def test_update_keeps_settings_and_user_lm(name, mb, secrets, tmp_path):
    b = boards.get(name)
    new = fw_file(tmp_path, b, 2)
    with EspRom(b.chip, mb * MB) as rom:
        flashed_node(rom, b, tmp_path, "keep01")
        fs = geometry.sized(b, f"{mb}MB").filesystem
        region_before = bytes(rom.flash.data[fs.offset : fs.end])
        out = update.update(b, rom.url, firmware=new, backup_to=tmp_path / "bk")
        assert out["mode"] == update.KEEP
        assert app_bytes(rom, b, new)
        # the filesystem region was not written at all
        assert bytes(rom.flash.data[fs.offset : fs.end]) == region_before
        assert not any(off >= fs.offset for off in map(lambda a: int(a, 16), _offsets(out["argv"])))
        res = rom.boot()
        assert res.outcome == "mounted", res.said
        assert res.config()["devfid"] == "keep01"
        assert res.files["LM_mine.py"] == USER_LM.decode()
        assert json.loads(out["backup"].read_text())["devfid"] == "keep01"

        # the old way, invoke flash of the same firmware: the node's settings and its LM are gone
        rom.reset()
        flash.flash(b, rom.url, "lamp", firmware=new)
        res = rom.boot()
        assert res.config()["devfid"] != "keep01" and "LM_mine.py" not in res.files


def _offsets(argv):
    i = argv.index("write-flash") + 1
    return [a for a in argv[i:] if a.startswith("0x")]


def test_update_to_the_ota_layout_carries_the_files(secrets, tmp_path):
    """default table (vfs at 0x200000) -> ESP32_GENERIC-OTA (partitions-4MiB-ota.csv, vfs at
    0x310000): the old region would not be found by the new firmware, so the files move."""
    b = boards.get("esp32")
    ota = boards.get("esp32", "OTA")
    new = fw_file(tmp_path, ota, 2, table="ota")
    with EspRom("esp32", 8 * MB) as rom:
        flashed_node(rom, b, tmp_path, "move01")
        # firmware alone: the OTA firmware looks at 0x310000, finds erased flash there and
        # formats it (inisetup.py): the settings are gone
        with EspRom("esp32", 8 * MB) as copy:
            copy.flash.data[:] = rom.flash.data
            copy.flash.data[ota.firmware.offset : ota.firmware.offset + new.stat().st_size] = new.read_bytes()
            lost = copy.boot()
            assert lost.outcome == "formatted" and lost.config() is None
        # the default board refuses the OTA firmware: its table puts the filesystem elsewhere
        with pytest.raises(MicrosError, match="pick the --variant"):
            update.update(b, rom.url, firmware=new, backup_to=tmp_path / "bk")
        out = update.update(ota, rom.url, firmware=new, backup_to=tmp_path / "bk")
        assert out["mode"] == update.CARRY and "LM_mine.py" in out["files"]
        res = rom.boot()
        assert (res.start, res.blocks) == (0x310000, (8 * MB - 0x310000) // 4096)
        assert res.outcome == "mounted", res.said
        assert res.config()["devfid"] == "move01" and res.files["LM_mine.py"] == USER_LM.decode()
        assert (out["backup"].parent / "files" / "LM_mine.py").read_bytes() == USER_LM


def test_esp8266_header_size_change_carries_the_files(secrets, tmp_path):
    """A node flashed with --flash-size 2MB on a 4 MB module: its firmware's header says 2MB
    (flashbdev.py: 251 blocks). The update writes the detected 4MB (763 blocks): carried."""
    b = boards.get("esp8266")
    new = fw_file(tmp_path, b, 2)
    with EspRom("esp8266", 4 * MB) as rom:
        flashed_node(rom, b, tmp_path, "hdr01", flash_size="2MB")
        assert rom.boot().blocks == (2 * MB - 20480) // 4096 - 256
        out = update.update(b, rom.url, firmware=new, backup_to=tmp_path / "bk")
        assert out["mode"] == update.CARRY
        res = rom.boot()
        assert res.flash_size == 4 * MB and res.blocks == (4 * MB - 20480) // 4096 - 256
        assert res.outcome == "mounted", res.said
        assert res.config()["devfid"] == "hdr01" and res.files["LM_mine.py"] == USER_LM.decode()


def test_esp8266_flashed_with_a_1mb_header_gets_its_settings_back(secrets, tmp_path):
    """A node flashed before the flash-size fix: header 1MB (flashbdev.py: -5 blocks, the node
    loops on "filesystem corrupt"), settings image for 4 MB at 0x100000. The update writes the
    chip's 4MB into the header, leaves the region alone, and the settings mount again."""
    b = boards.get("esp8266")
    old, new = fw_file(tmp_path, b, 1), fw_file(tmp_path, b, 2)
    with EspRom("esp8266", 4 * MB) as rom:
        img = fsimage.write_atomic(tmp_path / "fs.img", fsimage.image_for(b, {"devfid": "lost01"}))
        flash.esptool_main(flash.write_argv(b, rom.url, [(0, old), (b.filesystem.offset, img)]))
        assert rom.boot().outcome == "corrupt"
        rom.reset()
        out = update.update(b, rom.url, firmware=new, backup_to=tmp_path / "bk")
        assert out["mode"] == update.KEEP
        res = rom.boot()
        assert res.outcome == "mounted", res.said
        assert res.config()["devfid"] == "lost01"


def test_unreadable_flash_writes_nothing(secrets, tmp_path):
    b = boards.get("esp32")
    new = fw_file(tmp_path, b, 2)
    with EspRom("esp32", 4 * MB) as rom:
        flashed_node(rom, b, tmp_path, "cut01")
        before = bytes(rom.flash.data)
        rom.read_stop_after = 0  # the link drops at the first read-flash
        with pytest.raises(MicrosError, match="nothing was written"):
            update.update(b, rom.url, firmware=new, backup_to=tmp_path / "bk")
        assert bytes(rom.flash.data) == before


def test_a_filesystem_that_does_not_mount_and_moves_is_refused(secrets, tmp_path):
    b = boards.get("esp32")
    ota = boards.get("esp32", "OTA")
    with EspRom("esp32", 4 * MB) as rom:
        flashed_node(rom, b, tmp_path, "bad01")
        rom.flash.data[0x200000:0x202000] = b"\x00" * 0x2000  # the superblocks are gone
        before = bytes(rom.flash.data)
        with pytest.raises(MicrosError, match="invoke flash --board"):
            update.update(ota, rom.url, firmware=fw_file(tmp_path, ota, 2, table="ota"), backup_to=tmp_path / "bk")
        assert bytes(rom.flash.data) == before


def test_wrong_firmware_is_refused_before_any_connection(secrets, tmp_path):
    b = boards.get("esp32")
    with pytest.raises(MicrosError, match="not the ESP32"):
        update.update(b, "socket://127.0.0.1:9", firmware=fw_file(tmp_path, boards.get("esp8266"), 2))


def test_sim_update_rewrites_the_core_region_only(secrets, tmp_path):
    from microsctl.firmware import build
    from tests.flashkit import mount_files

    b = boards.get("sim")
    img = tmp_path / "flash.img"
    flash.flash(b, img, "lamp", sets=["devfid=sim01"])
    fs = geometry.for_image(b, img).filesystem
    data = bytearray(img.read_bytes())
    add_user_file(data, fs)
    img.write_bytes(data)
    romfs = build.build_sim(b)
    out = update.update(b, img, firmware=romfs, backup_to=tmp_path / "bk")
    after = img.read_bytes()
    assert after[fs.offset :] == bytes(data[fs.offset :])
    assert after[b.firmware.offset : b.firmware.offset + romfs.stat().st_size] == romfs.read_bytes()
    files = mount_files(img, fs.offset, fs)
    assert json.loads(files["node_config.json"])["devfid"] == "sim01" and "LM_mine.py" in files
    assert out["mode"] == update.KEEP


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "ESP8266_GENERIC"])
def test_update_through_esp32_mock_bootloader(name, secrets, tmp_path):
    """The third-party ROM double (PyPI esp32-mock-bootloader, one 4 MB chip per server). Its
    stub read-flash stops early ("Serial data stream stopped"), so the update's read-back fails
    and nothing is written; with --force the firmware alone is written. What the chip then
    holds is proven by its MD5 of each region (as in test_mock_bootloader.py), and the dump is
    booted with the boot model: the settings are still there."""
    import hashlib

    import esp32_mock_bootloader as mock
    from tests.test_mock_bootloader import _read_back

    b = boards.get(name)
    old, new = fw_file(tmp_path, b, 1), fw_file(tmp_path, b, 2)
    sized = geometry.sized(b, "4MB")
    fs = sized.filesystem
    img = bytearray(flash.node_image(sized, "lamp", ["devfid=mockupd"])[0])
    want = bytearray(b"\xff" * 4 * MB)
    want[b.firmware.offset : b.firmware.offset + old.stat().st_size] = old.read_bytes()
    want[fs.offset : fs.end] = img
    with mock.mock_bootloader(b.chip) as m:
        url = m.url()
        flash.flash(b, url, "lamp", firmware=old, sets=["devfid=mockupd"])
        _, before = _read_back(b.chip, url, [], [(0, 4 * MB)])
        with pytest.raises(MicrosError, match="could not read the node's flash.*nothing was written"):
            update.update(b, url, firmware=new, backup_to=tmp_path / "bk")
        _, still = _read_back(b.chip, url, [], [(0, 4 * MB)])
        assert still == before
        out = update.update(b, url, firmware=new, backup_to=tmp_path / "bk", force=True)
        assert out["mode"] == update.NOTHING and _offsets(out["argv"]) == [f"{b.firmware.offset:#x}"]
        fw = new.read_bytes()
        _, sums = _read_back(b.chip, url, [], [(b.firmware.offset + 4, len(fw) - 4), (fs.offset, fs.size)])
    assert sums[(b.firmware.offset + 4, len(fw) - 4)] == hashlib.md5(fw[4:]).hexdigest()
    assert sums[(fs.offset, fs.size)] == hashlib.md5(img).hexdigest()  # the settings region untouched
    dump = bytearray(want)
    dump[b.firmware.offset : b.firmware.offset + len(fw)] = fw
    if b.chip == "esp8266":
        dump[3] = 0x40 | (fw[3] & 0x0F)  # esptool wrote the 4MB the mock reports into the header
    res = boot(b.chip, dump)
    assert res.outcome == "mounted", res.said
    assert res.config()["devfid"] == "mockupd"


def test_invoke_update(secrets, tmp_path):
    """The task end to end: one line saying what was done, the node's settings kept."""
    import os
    import subprocess

    from microsctl import ROOT

    b = boards.get("esp32")
    new = fw_file(tmp_path, b, 2)
    with EspRom("esp32", 4 * MB) as rom:
        flashed_node(rom, b, tmp_path, "cli01")
        out = subprocess.run(["invoke", "update", "--board", "esp32", "--port", rom.url, "--firmware", str(new)],
                             capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "[update] done: firmware written, settings untouched"
        assert "write-flash --flash-size keep 0x1000 " in out.stderr and " 0x200000 " not in out.stderr
        assert app_bytes(rom, b, new) and rom.boot().config()["devfid"] == "cli01"
        bad = subprocess.run(["invoke", "update", "--board", "esp32", "--port", rom.url, "--firmware",
                              str(tmp_path / "missing.bin")], capture_output=True, text=True, cwd=ROOT)
        assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1].startswith("error: cannot read firmware")
