"""Firmware OTA with rollback (issue 14 parts 2 and 3) on virtual nodes with the ESP32 OTA layout.

The node runs the real MicroPython unix port; its flash is an image file laid out as MicroPython
v1.28.0's ports/esp32/partitions-4MiB-ota.csv (microsctl/node/simota.py). Modelled upstream code:
- esp32.Partition (ports/esp32/esp32_partition.c) in ports/unix/esp32part.py, with ESP-IDF's
  components/app_update/esp_ota_ops.c behind it (get_next_update, set_boot with its image check,
  mark_app_valid_cancel_rollback) and the otadata records of bootloader_common.c;
- the second-stage bootloader's slot choice (components/bootloader_support/src/bootloader_utility.c,
  CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y as ports/esp32/boards/sdkconfig.base sets it) in
  ports/unix/idfboot.py: NEW -> PENDING_VERIFY at its first boot, PENDING_VERIFY -> ABORTED at
  the next, so an app that never marked itself valid is rolled back.
The device code (frozen/micros/fwota.py, reached through micros.ota) is the one a board runs.
"""
import base64
import hashlib
import signal
import subprocess
import threading
import time

import pytest

from microsctl import FROZEN, MicrosError
from microsctl.firmware import boards, build
from microsctl.node import fwota, simota
from microsctl.node.client import Shell

KEY = "fw-ota-shell-key"


def _romfs(out, version, patch=None):
    """A ROMFS image of the core built as `invoke build --board sim` builds it, with VERSION set
    and optionally one module's source replaced ({module file: new source})."""
    from microsctl.firmware.compile import mpy_cross

    b = boards.get("sim")
    stage = out / ".stage"
    build.compile_frozen(b, stage)
    src = (FROZEN / "micros" / "__init__.py").read_text()
    patches = {"__init__.py": src.replace('VERSION = "0.1.0"', f'VERSION = "{version}"')}
    patches.update(patch or {})
    for name, text in patches.items():
        py = out / name
        py.write_text(text)
        subprocess.run([mpy_cross(), "-o", str(stage / "micros" / (name[:-3] + ".mpy")), "-s", f"micros/{name}",
                        f"-march={b.mpy.arch}", str(py)], check=True)
    image = out / f"core-{version}.img"
    subprocess.run(build.romfs_argv(stage, image), check=True, stdout=subprocess.DEVNULL)
    return image


@pytest.fixture(scope="module")
def cores(tmp_path_factory):
    """Three firmwares: the old one (0.1.0), a new one (0.2.0), and a new one whose boot fails
    (its boot.run raises: the node comes up in safe mode, the health check fails)."""
    out = tmp_path_factory.mktemp("cores")
    boot = (FROZEN / "micros" / "boot.py").read_text()
    bad = boot.replace("def run():\n", "def run():\n    raise RuntimeError('broken firmware')\n", 1)
    assert bad != boot
    return {"old": _romfs(out, "0.1.0"), "new": _romfs(out, "0.2.0"),
            "bad": _romfs(out, "0.3.0", {"boot.py": bad})}


@pytest.fixture
def mk(make_node, monkeypatch, tmp_path, cores):
    """A virtual node on an OTA-layout flash image with the old core in ota_0 and a shell key."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)

    def make(auth=True, **kw):
        img = tmp_path / f"flash{len(list(tmp_path.glob('flash*.img')))}.img"
        simota.write_image(img, cores["old"])
        kw.setdefault("heap", "256k")  # the unix port has no mmap: the ROMFS core sits in the heap
        return make_node(sets=[f"authkey={KEY}"] if auth else [], flash=img, **kw)

    return make


def _state(n):
    return simota.otadata(n.flash)


def test_layout_is_the_esp32_ota_table(tmp_path, cores):
    img = tmp_path / "f.img"
    simota.write_image(img, cores["old"])
    from microsctl.flashing import checks

    rows = checks.partitions(img.read_bytes()[0x8000:0x8C00])  # the table parses as ESP-IDF's
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("nvs", 0x9000, 0x4000), ("otadata", 0xD000, 0x2000), ("phy_init", 0xF000, 0x1000),
        ("ota_0", 0x10000, 0x180000), ("ota_1", 0x190000, 0x180000)]
    assert checks.fs_offset_of(rows) == simota.VFS == boards.get("ESP32_GENERIC", "OTA").filesystem.offset
    assert simota.slot_image(img, "ota_0") == cores["old"].read_bytes()
    assert [r[0] for r in simota.otadata(img)] == [0xFFFFFFFF, 0xFFFFFFFF]  # unused, as flashed


def test_good_update_boots_the_new_slot_and_is_marked_valid(mk, cores):
    n = mk()
    assert _state(n)[0] == (1, "VALID", True)  # the bootloader's set_actual_ota_seq on ota_0
    with Shell(n.port) as sh:
        assert fwota.info(sh) == {"platform": "linux", "running": "ota_0", "boot": "ota_0", "version": "0.1.0"}
    boots = n.boots
    image = cores["new"].read_bytes()
    res = fwota.push(image, n.port)
    assert res["result"] == "updated" and res["slot"] == "ota_1"
    assert res["after"] == {"platform": "linux", "running": "ota_1", "boot": "ota_1", "version": "0.2.0"}
    assert n.boots == boots + 1
    assert simota.slot_image(n.flash, "ota_1") == image
    assert _state(n)[1] == (2, "VALID", True)  # seq 2 -> slot (2-1) % 2 = ota_1, marked valid
    n.stop()  # and it stays: the next boot runs ota_1 again
    n.start()
    with Shell(n.port) as sh:
        assert fwota.info(sh)["running"] == "ota_1"
        assert sh.cmd("version") == "0.2.0"
    assert "fwota: ota_1 marked valid" in n.log.read_text()


def test_failed_health_check_rolls_back_to_the_old_slot(mk, cores):
    n = mk()
    res = fwota.push(cores["bad"].read_bytes(), n.port)
    assert res["result"] == "rolled back"
    assert res["after"]["running"] == "ota_0" and res["after"]["version"] == "0.1.0"
    assert _state(n)[1] == (2, "ABORTED", True)  # the trial was not marked: the bootloader aborted it
    log = n.log.read_text()
    assert "ota_1 failed its health check" in log and "fwota: ota_1 was rolled back, ota_0 runs" in log
    with pytest.raises(MicrosError, match="rolled back to ota_0"):
        fwota.firmware_ota(n.port, firmware=cores["bad"], board="sim")
    # a good firmware after a rollback goes in the same slot
    assert fwota.push(cores["new"].read_bytes(), n.port)["result"] == "updated"
