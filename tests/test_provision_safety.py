"""Provisioning never loses a node's settings: the read-back tells "no config", "config corrupt"
and "could not read the flash" apart; a failed read stops before anything is written (unless
--force); the backup is on disk first; the node's own values and the settings the new profile
does not name are carried forward.

The read-back failure is reproduced with the third-party ROM-loader double esp32-mock-bootloader
0.3.0 (its read-flash through the flasher stub ends with "Serial data stream stopped") and with
our emulator's link that drops mid-read. The values a node writes itself come from the device
code: frozen/micros/net.py (hwuid, nwmd, devip), run on the real MicroPython unix port.
"""
import contextlib
import io
import json

import pytest
from invoke import Context, Exit

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.flashing import flash
from microsctl.flashing import fsimage
from microsctl.flashing import readback
from microsctl.emulator.esprom import EspRom
from microsctl.node.client import Shell
from tests.conftest import free_port
from tests.flashkit import SECRETS, mount_config, set_secrets

ESP32 = boards.get("esp32")
FS = ESP32.filesystem


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)


def region(rom):
    return bytes(rom.flash.data[FS.offset : FS.end])


def node_flash(rom, files):
    """Put a filesystem in the emulated chip as a node left it."""
    rom.flash.data[FS.offset : FS.end] = fsimage.build(FS, files)


def node_cfg(**kw):
    cfg = {"devfid": "kitchen", "hwuid": "24:0a:c4:00:11:22", "nwmd": "STA", "devip": "10.0.0.7",
           "staessid": "homenet", "stapwd": "node-secret-1", "appwd": "node-admin-1", "gmttime": 2}
    cfg.update(kw)
    return cfg


# -- could not read the flash ----------------------------------------------------------

def _mock_region_md5(url):
    """MD5 of the filesystem region as the mock holds it, through the ROM loader (no stub)."""
    from esptool.cmds import connect_esp

    with contextlib.redirect_stdout(io.StringIO()):
        with connect_esp(port=url, chip="esp32", before="no-reset") as esp:
            return esp.flash_md5sum(FS.offset, FS.size)


def test_third_party_mock_read_failure_stops_provisioning(secrets, tmp_path):
    from esp32_mock_bootloader import mock_bootloader  # pinned in the dev extras

    with mock_bootloader("esp32") as m:
        url = m.url()
        flash.provision(ESP32, url, "lamp", sets=["devfid=first01"], read_back=False)
        before = _mock_region_md5(url)
        # today: "no readable node_config.json ...; nothing to back up", rewritten, exit status 0
        with pytest.raises(Exit) as exc:
            from microsctl import cli

            cli.provision(Context(), board="esp32", port=url, profile="heartbeat")
        assert exc.value.code == 1 and "could not read the node's flash" in str(exc.value.message)
        assert "--force" in str(exc.value.message)
        assert _mock_region_md5(url) == before  # nothing was written
        res = flash.provision(ESP32, url, "heartbeat", backup_to=tmp_path / "bk", force=True)
        assert res["state"] == readback.UNREADABLE and res["backup"] is None
        assert _mock_region_md5(url) != before
    assert not (tmp_path / "bk").exists()


@pytest.mark.parametrize("blocks", [0, 1])  # the link drops before any data / after block 0
def test_read_that_stops_early_writes_nothing(blocks, secrets, tmp_path, capfd):
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: json.dumps(node_cfg()).encode()})
        old = region(rom)
        rom.read_stop_after = blocks * FS.block_size
        with pytest.raises(MicrosError, match="could not read the node's flash.*nothing was written.*--force"):
            flash.provision(ESP32, rom.url, "heartbeat", backup_to=tmp_path / "bk")
        assert region(rom) == old
        assert not any(op.startswith("FLASH") for op in rom.log)  # no write began
        assert not (tmp_path / "bk").exists()

        rom.reset()
        rom.read_stop_after = blocks * FS.block_size
        res = flash.provision(ESP32, rom.url, "heartbeat", backup_to=tmp_path / "bk", force=True)
        assert res["state"] == readback.UNREADABLE and region(rom) != old
        assert fsimage.read_config(FS, region(rom))["devfid"] == "heartbeat01"
    assert "--force: writing without a backup" in capfd.readouterr().err


# -- no config / corrupt -------------------------------------------------------------

def test_erased_region_is_no_config(secrets, tmp_path):
    with EspRom("esp32", ESP32.flash_bytes) as rom:  # a new chip: all 0xFF
        res = flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk")
        assert res["state"] == readback.NONE and res["backup"] is None
        assert fsimage.read_config(FS, region(rom))["devfid"] == "lamp01"


def test_filesystem_without_config_is_no_config(secrets, tmp_path):
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {"main.py": b"import micros\n"})
        res = flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk")
        assert res["state"] == readback.NONE and res["backup"] is None


def test_corrupt_config_is_kept_raw_before_the_write(secrets, tmp_path, monkeypatch):
    bad = b'{"devfid": "kitchen", "staessid": '  # cut short by a power loss
    seen = []
    real = flash.run_write

    def spy(argv):  # what is on disk when esptool starts writing
        seen.extend(p.read_bytes() for p in (tmp_path / "bk").rglob("*.bad"))
        return real(argv)

    monkeypatch.setattr(flash, "run_write", spy)
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: bad})
        res = flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk")
        assert res["state"] == readback.CORRUPT
        assert res["backup"].name == "node_config.json.bad" and res["backup"].read_bytes() == bad
        assert res["backup"].stat().st_mode & 0o077 == 0
        assert seen == [bad]
        assert fsimage.read_config(FS, region(rom))["devfid"] == "lamp01"


def test_a_list_is_not_a_config(secrets, tmp_path):
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: b"[1, 2]"})
        assert flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk")["state"] == readback.CORRUPT


def test_fat_filesystem_is_not_taken_for_empty(secrets, tmp_path):
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        boot = bytearray(b"\xeb\x3c\x90MSDOS5.0" + bytes(499))
        boot[510:512] = b"\x55\xaa"
        rom.flash.data[FS.offset : FS.offset + 512] = boot
        old = region(rom)
        with pytest.raises(MicrosError, match="FAT.*nothing was written"):
            flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk")
        assert region(rom) == old


def test_filesystem_of_another_flash_size_is_read(secrets, tmp_path):
    """An 8 MB module: MicroPython's vfs runs to the end of flash (ports/esp32/main.c), so the
    node's littlefs has more blocks than a 4 MB board's; its config is still read and kept."""
    with EspRom("esp32", 8 * 1024 * 1024) as rom:
        big = FS.__class__(**{**FS.__dict__, "size": 6 * 1024 * 1024})
        rom.flash.data[big.offset : big.end] = fsimage.build(big, {fsimage.CONFIG: json.dumps(node_cfg()).encode()})
        res = flash.provision(ESP32, rom.url, "heartbeat", backup_to=tmp_path / "bk")
        assert res["state"] == readback.FOUND
        assert json.loads(res["backup"].read_text())["hwuid"] == "24:0a:c4:00:11:22"


# -- carried forward -------------------------------------------------------------------

def test_node_values_and_unnamed_settings_are_carried_forward(secrets, tmp_path, capfd):
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: json.dumps(node_cfg(boothook="gpio RGB(0,0,0)", retired=1)).encode()})
        res = flash.provision(ESP32, rom.url, "heartbeat", sets=["gmttime=5"], backup_to=tmp_path / "bk")
        cfg = fsimage.read_config(FS, region(rom))
    assert json.loads(res["backup"].read_text())["devfid"] == "kitchen"
    # the node's own values, and settings heartbeat does not name
    assert (cfg["hwuid"], cfg["nwmd"], cfg["devip"], cfg["staessid"]) == ("24:0a:c4:00:11:22", "STA", "10.0.0.7", "homenet")
    assert cfg["boothook"] == "gpio RGB(0,0,0)"
    # what the profile and --set name wins; the host's secrets win over the node's
    assert (cfg["devfid"], cfg["timirq"], cfg["gmttime"]) == ("heartbeat01", True, 5)
    assert cfg["stapwd"] == SECRETS["MICROS_STAPWD"] and cfg["appwd"] == SECRETS["MICROS_APPWD"]
    assert res["carried"] == ["boothook", "devip", "hwuid", "nwmd", "staessid"]
    err = capfd.readouterr().err
    assert "carried forward from the node: boothook=gpio RGB(0,0,0), devip=10.0.0.7, hwuid=24:0a:c4:00:11:22" in err
    assert "not carried (unknown or invalid here): retired" in err
    for v in list(SECRETS.values()) + ["node-secret-1", "node-admin-1"]:
        assert v not in err


def test_node_secrets_are_kept_when_the_host_has_none(tmp_path, monkeypatch, capfd):
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "none.json")
    for k in ("MICROS_SECRETS", "MICROS_STAPWD", "MICROS_APPWD", "MICROS_AUTHKEY"):
        monkeypatch.delenv(k, raising=False)

    def ask(key):
        raise AssertionError(f"asked for {key}, which the node has")

    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: json.dumps(node_cfg(authkey="node-shell-key-1")).encode()})
        res = flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk", ask=ask)
        cfg = fsimage.read_config(FS, region(rom))
    assert (cfg["stapwd"], cfg["appwd"], cfg["authkey"]) == ("node-secret-1", "node-admin-1", "node-shell-key-1")
    err = capfd.readouterr().err
    assert "stapwd (secret)" in err and "authkey (secret)" in err and res["config"]["stapwd"] == "*****"
    assert "node-shell-key-1" not in err and res["config"]["authkey"] == "*****"


def test_a_node_without_a_shell_key_gets_one_when_provisioned(tmp_path, monkeypatch):
    """A node flashed before auth existed has no authkey: provisioning asks for one (auth on
    from then on), unless the profile turns auth off."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "none.json")
    for k in ("MICROS_SECRETS", "MICROS_STAPWD", "MICROS_APPWD", "MICROS_AUTHKEY"):
        monkeypatch.delenv(k, raising=False)
    asked = []

    def ask(key):
        asked.append(key)
        return "typed-shell-key-1"

    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: json.dumps(node_cfg()).encode()})
        flash.provision(ESP32, rom.url, "lamp", backup_to=tmp_path / "bk", ask=ask)
        cfg = fsimage.read_config(FS, region(rom))
    assert asked == ["authkey"] and cfg["authkey"] == "typed-shell-key-1" and cfg["auth"] is True


def test_devip_is_dropped_when_the_network_changes(secrets, tmp_path):
    with EspRom("esp32", ESP32.flash_bytes) as rom:
        node_flash(rom, {fsimage.CONFIG: json.dumps(node_cfg()).encode()})
        flash.provision(ESP32, rom.url, "lamp", sets=["staessid=office"], backup_to=tmp_path / "bk")
        cfg = fsimage.read_config(FS, region(rom))
    assert cfg["staessid"] == "office" and cfg["devip"] == "n/a" and cfg["hwuid"] == "24:0a:c4:00:11:22"


def test_values_the_node_wrote_at_boot_survive_provisioning(secrets, tmp_path):
    """The real device code writes hwuid, nwmd and devip (frozen/micros/net.py on the MicroPython
    unix port) into the flash image's littlefs; provisioning another profile keeps them."""
    from microsctl.node.sim import SimNode

    sim = boards.get("sim")
    img = tmp_path / "flash.img"
    flash.flash(sim, img, "lamp", sets=["devfid=lamp07", "staessid=homenet", f"socport={free_port()}"])
    node = SimNode("w", root=tmp_path, flash=img)
    node.prepare("lamp")
    node.start()
    try:
        with Shell(node.port) as sh:
            sh.cmd("conf")
            assert sh.cmd("gmttime 3").strip().startswith("Saved")
            sh.cmd("noconf")
    finally:
        node.stop()
    before = mount_config(img, sim.filesystem.offset, sim.filesystem)
    assert before["hwuid"] != "n/a" and before["devip"] != "n/a" and before["nwmd"] == "STA"
    res = flash.provision(sim, img, "heartbeat", backup_to=tmp_path / "bk")
    after = mount_config(img, sim.filesystem.offset, sim.filesystem)
    for k in ("hwuid", "devip", "nwmd", "staessid", "boothook"):
        assert after[k] == before[k], k
    assert after["gmttime"] == 3 and after["devfid"] == "heartbeat01" and after["timirq"] is True
    assert json.loads(res["backup"].read_text())["devfid"] == "lamp07"
