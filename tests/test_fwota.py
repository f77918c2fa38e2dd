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
import json
import signal
import socket
import subprocess
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
    """Four firmwares: the old one (0.1.0), a new one (0.2.0), a new one whose boot fails (its
    boot.run raises: the node comes up in safe mode, the health check fails), and a new one that
    cannot read the node's config (micros.confw moves it to node_config.json.bad, uses defaults)."""
    out = tmp_path_factory.mktemp("cores")
    boot = (FROZEN / "micros" / "boot.py").read_text()
    bad = boot.replace("def run():\n", "def run():\n    raise RuntimeError('broken firmware')\n", 1)
    assert bad != boot
    conf = (FROZEN / "micros" / "confw.py").read_text()  # conf's loading half
    unread = conf.replace("data = json.load(f)", "data = json.load(f)\n            raise ValueError", 1)
    assert unread != conf
    return {"old": _romfs(out, "0.1.0"), "new": _romfs(out, "0.2.0"),
            "bad": _romfs(out, "0.3.0", {"boot.py": bad}), "noconf": _romfs(out, "0.4.0", {"confw.py": unread})}


@pytest.fixture
def mk(make_node, monkeypatch, tmp_path, cores):
    """A virtual node on an OTA-layout flash image with the old core in ota_0 and a shell key."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)

    def make(auth=True, **kw):
        img = tmp_path / f"flash{len(list(tmp_path.glob('flash*.img')))}.img"
        simota.write_image(img, cores["old"])
        return make_node(sets=[f"authkey={KEY}"] if auth else [], flash=img, **kw)

    return make


def _state(n):
    return simota.otadata(n.flash)


def _files(n):
    """The node's filesystem (the vfs partition) as the real MicroPython's VfsLfs2 reads it."""
    from tests.flashkit import mount_files

    fs = simota.board().filesystem
    return mount_files(n.flash, fs.offset, fs)


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
    files = _files(n)  # the filesystem untouched but for the trial marker, which is gone
    assert ".fwota" not in files and json.loads(files["node_config.json"])["authkey"] == KEY


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


def _raw(port, image, stop_after=None, sha=None):
    """Drive `ota fw` by hand; stop after `stop_after` data lines (None: all of them)."""
    sh = Shell(port)
    ready = sh.cmd(f"ota fw begin {len(image)} {sha or hashlib.sha256(image).hexdigest()}")
    assert ready == "fw ready 512 ota_1"
    for i, off in enumerate(range(0, len(image), 512)):
        if i == stop_after:
            return sh
        assert sh.cmd("ota fw data " + base64.b64encode(image[off : off + 512]).decode()) == "ok"
    return sh


def _runs(n, slot, version):
    with Shell(n.port) as sh:
        got = fwota.info(sh)
    assert (got["running"], got["version"]) == (slot, version)


def test_transfer_cut_halfway_keeps_the_old_firmware_and_the_next_attempt_works(mk, cores):
    n = mk()
    image = cores["new"].read_bytes()
    sh = _raw(n.port, image, stop_after=len(image) // 1024)
    sh.close()  # the link drops halfway
    assert n.flash.read_bytes()[0x190000 : 0x190000 + len(image)] != image
    n.stop()  # a reset now boots the old firmware: the boot slot never changed
    n.start()
    _runs(n, "ota_0", "0.1.0")
    assert _state(n)[1][0] == 0xFFFFFFFF
    res = fwota.push(image, n.port)  # and the next attempt goes through
    assert res["result"] == "updated" and res["after"]["version"] == "0.2.0"


def test_a_cut_session_frees_the_update_for_another_client(mk, cores):
    n = mk()
    image = cores["new"].read_bytes()
    a = _raw(n.port, image, stop_after=3)
    with Shell(n.port) as b:
        assert b.cmd(f"ota fw begin 10 {'00' * 32}") == "Error: another client is updating this node"
        a.close()
        time.sleep(0.3)
        assert b.cmd(f"ota fw begin 10 {'00' * 32}") == "fw ready 512 ota_1"
        assert b.cmd("ota fw abort") == "fw aborted"


def test_node_killed_during_the_slot_write_boots_the_old_firmware(mk, cores):
    n = mk()
    image = cores["new"].read_bytes()
    sh = _raw(n.port, image, stop_after=40)  # 20 KB of the slot written
    raw = n.flash.read_bytes()[0x190000 : 0x190000 + len(image)]
    assert raw[: 40 * 512] == image[: 40 * 512] and raw[40 * 512 :] != image[40 * 512 :]  # half a slot
    n.proc.send_signal(signal.SIGKILL)  # the power goes
    sh.close()
    n.stop()
    n.start()
    _runs(n, "ota_0", "0.1.0")
    assert [r[0] for r in _state(n)] == [1, 0xFFFFFFFF]
    assert fwota.push(image, n.port)["result"] == "updated"


def test_wrong_sha256_is_refused_before_set_boot(mk, cores):
    n = mk()
    image = cores["new"].read_bytes()
    sh = _raw(n.port, image, sha="00" * 32)
    assert sh.cmd("ota fw end") == "Error: sha256 mismatch: the boot slot is unchanged"
    sh.close()
    assert simota.slot_image(n.flash, "ota_1") == image  # all of it written, and still not booted
    assert _state(n)[1][0] == 0xFFFFFFFF  # set_boot never ran
    n.stop()
    n.start()
    _runs(n, "ota_0", "0.1.0")


def test_an_image_the_bootloader_would_not_load_is_refused_by_set_boot(mk):
    """esp_ota_set_boot_partition runs esp_image_verify first: a slot that holds no app image
    (here: no ROMFS image) is refused even with a matching sha256."""
    n = mk()
    junk = bytes(range(256)) * 8
    sh = _raw(n.port, junk)
    assert sh.cmd("ota fw end").startswith("Error: firmware update aborted: OSError(-5379")
    sh.close()
    assert _state(n)[1][0] == 0xFFFFFFFF
    assert ".fwota" not in _files(n)


def test_update_without_authentication_is_refused(mk, cores, monkeypatch):
    monkeypatch.delenv("MICROS_AUTHKEY")
    n = mk(auth=False)  # no shell key: the node takes no update at all
    assert n.config()["authkey"] == "n/a"
    with Shell(n.port) as sh:
        assert sh.cmd("ota fw info") == "Error: ota needs an authenticated shell: set authkey (docs/security.md)"
        assert sh.cmd(f"ota fw begin 10 {'00' * 32}").startswith("Error: ota needs an authenticated shell")
    with pytest.raises(MicrosError, match="needs an authenticated shell"):
        fwota.push(cores["new"].read_bytes(), n.port)
    assert simota.slot_image(n.flash, "ota_1") == b"" and _state(n)[1][0] == 0xFFFFFFFF


def test_a_client_that_has_not_proven_the_key_is_refused(mk, cores, monkeypatch):
    n = mk()
    monkeypatch.setenv("MICROS_AUTHKEY", "not-the-key")
    with pytest.raises(MicrosError, match="shell key|authenticate"):
        fwota.push(cores["new"].read_bytes(), n.port)
    assert n.flash.read_bytes()[0x190000:0x190004] == b"\xff" * 4 and _state(n)[1][0] == 0xFFFFFFFF
    # without the key a client is answered hello, version, exit and auth only (micros.auth.gate)
    with socket.create_connection(("127.0.0.1", n.port), 5) as s:
        s.settimeout(5)
        s.recv(256)  # the greeting with the nonce
        s.sendall(f"ota fw begin 10 {'00' * 32}\n".encode())
        time.sleep(0.3)
        assert b"fw ready" not in s.recv(512)


def test_esp8266_node_is_refused_in_one_line(make_node, monkeypatch, tmp_path, cores):
    """A node impersonating the ESP8266 (MICROS_SIM_CHIP=esp8266): MicroPython has no esp32 module
    there (ports/esp8266 has no esp32_partition.c), so the tool stops before sending a byte."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)
    n = make_node(board="esp8266", sets=[f"authkey={KEY}"])
    with pytest.raises(MicrosError) as err:
        fwota.push(cores["new"].read_bytes(), n.port)
    msg = str(err.value)
    assert "\n" not in msg and "no firmware OTA" in msg and "invoke update" in msg and "invoke flash" in msg


def test_host_checks_the_image_before_anything_is_sent(tmp_path):
    bad = tmp_path / "x.img"
    bad.write_bytes(b"\xe9" + b"\0" * 100)
    with pytest.raises(MicrosError, match="not a ROMFS image"):
        fwota.firmware_ota(1, firmware=bad, board="sim")
    with pytest.raises(MicrosError, match="no firmware OTA on the ESP8266"):
        fwota.app_image(boards.get("esp8266"), b"\xe9" * 100)


def test_partition_shim_follows_the_idf_rules(tmp_path, cores):
    """esp32part.py on the real unix port: next update slot, set_boot's seq arithmetic
    (esp_rewrite_ota_data), NOR writes that only clear bits, the simple interface's erase."""
    from microsctl import PORTS
    from microsctl.node.sim import micropython

    img = tmp_path / "f.img"
    simota.write_image(img, cores["old"])
    script = f"""
import sys
sys.path.insert(0, {str(PORTS / 'unix')!r})
import idfboot, esp32part as P
idfboot.select({str(img)!r})
Partition = P.Partition
run = Partition(Partition.RUNNING)
nxt = run.get_next_update()
print(run.info()[4], nxt.info()[4], nxt.get_next_update().info()[4])
nxt.writeblocks(0, open({str(cores['new'])!r}, 'rb').read(4096))
buf = bytearray(4)
nxt.writeblocks(1, b'\\x0f\\x0f\\x0f\\x0f', 0)  # extended write onto erased flash? block 1 is not erased here
nxt.readblocks(1, buf)
print(buf.hex())
nxt.ioctl(6, 1)
nxt.writeblocks(1, b'\\xf0\\xf0\\xf0\\xf0', 0)
nxt.writeblocks(1, b'\\x3c\\x3c\\x3c\\x3c', 0)  # no erase between: bits only clear
nxt.readblocks(1, buf)
print(buf.hex())
print(Partition(Partition.BOOT).info()[4])
"""
    out = subprocess.run([micropython(), "-c", script], capture_output=True, text=True, timeout=30)
    lines = out.stdout.split("\n")
    assert lines[1] == "ota_0 ota_1 ota_0", out.stdout + out.stderr
    assert lines[3] == "30303030"  # 0xf0 & 0x3c
    assert lines[4] == "ota_0"


def test_firmware_without_a_core_rolls_back(mk, tmp_path):
    """A new firmware whose core does not import: the filesystem main.py (ports/main.py) sees the
    trial (.fwota) and resets without marking it valid; the bootloader boots the old slot."""
    stage = tmp_path / "nocore"
    (stage / "other").mkdir(parents=True)
    (stage / "other" / "x.txt").write_text("no micros package in this image")
    image = tmp_path / "nocore.img"
    subprocess.run(build.romfs_argv(stage, image), check=True, stdout=subprocess.DEVNULL)
    n = mk()
    res = fwota.push(image.read_bytes(), n.port)
    assert res["result"] == "rolled back" and res["after"]["version"] == "0.1.0"
    assert _state(n)[1][1] == "ABORTED"
    assert "micrOS core missing" in n.log.read_text()
    assert ".fwota" not in _files(n) and "node_config.json" in _files(n)


def test_sim_table_is_the_one_the_esp32_ota_firmware_carries():
    from microsctl.emulator import images

    assert simota.partition_table() == images.partition_table(images.PARTITIONS["ota"])


def test_esp32_firmware_bin_gives_its_app_image_for_the_slot():
    """firmware.bin = bootloader + table + app (ports/esp32/makeimg.py): the slot gets the app,
    checked as esptool parses it; a firmware for the default table is refused for the OTA variant."""
    from esptool.bin_image import LoadFirmwareImage

    from microsctl.emulator import images

    b = boards.get("esp32", "OTA")
    data = images.firmware("esp32", 300_000, table="ota")
    app = fwota.app_image(b, data, "firmware.bin")
    assert app[0] == 0xE9 and app == data[0x10000 - 0x1000 :][: len(app)]
    assert LoadFirmwareImage("esp32", app).data_length <= len(app)
    assert fwota.app_image(b, app, "micropython.bin") == app  # the app alone is taken as it is
    with pytest.raises(MicrosError, match="--variant"):
        fwota.app_image(b, images.firmware("esp32", 300_000), "firmware.bin")
    with pytest.raises(MicrosError):
        fwota.app_image(b, b"\xe9" + bytes(5000), "junk.bin")


def test_invoke_ota_firmware_reports_the_new_slot_or_the_rollback(mk, cores):
    import os

    from microsctl import ROOT
    from tests.test_cli import INVOKE

    n = mk()
    env = dict(os.environ, MICROS_AUTHKEY=KEY)
    run = subprocess.run(INVOKE + ["ota", "--port", str(n.port), "--firmware", str(cores["new"])], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "the node runs ota_1, micrOS 0.2.0" in run.stdout
    assert "bytes written" in run.stderr  # progress
    run = subprocess.run(INVOKE + ["ota", "--port", str(n.port), "--firmware", str(cores["bad"])], cwd=ROOT,
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    err = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "rolled back to ota_1 (micrOS 0.2.0)" in err[0]


def test_firmware_that_cannot_read_the_config_rolls_back_with_the_config_kept(mk, cores):
    """"Config loaded" is part of the health check: the trial boot found its config unreadable and
    started from defaults (no shell key, the default port); settle puts the config back and resets,
    so the old firmware comes back with the node's own settings (the tool reconnects with its key)."""
    n = mk()
    before = json.loads(_files(n)["node_config.json"])
    res = fwota.push(cores["noconf"].read_bytes(), n.port)
    assert res["result"] == "rolled back" and res["after"]["version"] == "0.1.0"
    files = _files(n)
    assert json.loads(files["node_config.json"])["socport"] == before["socport"] == n.port
    assert json.loads(files["node_config.json"])["authkey"] == KEY
    assert "node_config.json.bad" not in files and ".fwota.cfg" not in files and ".fwota" not in files
    assert "ota_1 failed its health check (config not loaded)" in n.log.read_text()


PROBE = 'import sys\n\n\ndef loaded():\n    return " ".join(sorted(m for m in sys.modules if m.startswith("micros.")))\n'


def _with_probe(n):
    """A user Load Module on the node's filesystem that lists the loaded micros modules."""
    from microsctl.flashing import fsimage

    fs = simota.board().filesystem
    data = n.flash.read_bytes()
    region = fsimage.update(fs, data[fs.offset : fs.end], {"LM_probe.py": PROBE.encode()})
    n.flash.write_bytes(data[: fs.offset] + region + data[fs.end :])


def test_fwota_is_cold_loaded_for_an_update_and_dropped_after(mk, cores):
    """Nothing of the firmware OTA is imported at boot (micros.core only opens .fwota), and
    micros.ota and micros.fwota are dropped once an `ota fw` line is answered and after settle."""
    n = mk(start=False)
    _with_probe(n)
    n.start()
    with Shell(n.port) as sh:
        boot = sh.cmd("probe loaded")
        assert "micros.fwota" not in boot and "micros.ota" not in boot and "micros.core" in boot
        assert sh.cmd("ota fw info").startswith("fw linux ota_0")
        assert "micros.fwota" not in sh.cmd("probe loaded")
        assert sh.cmd(f"ota fw begin 1024 {'00' * 32}") == "fw ready 512 ota_1"
        busy = sh.cmd("probe loaded")
        assert "micros.fwota" in busy and "micros.ota" in busy  # kept while the update runs
        assert sh.cmd("ota fw abort") == "fw aborted"
        after = sh.cmd("probe loaded")
        assert "micros.fwota" not in after and "micros.ota" not in after
    assert fwota.push(cores["new"].read_bytes(), n.port)["result"] == "updated"
    with Shell(n.port) as sh:  # the trial boot settled, and dropped what it loaded
        settled = sh.cmd("probe loaded")
        assert "micros.fwota" not in settled and "micros.ota" not in settled


def test_esp8266_build_without_fwota_says_so(make_node, monkeypatch, tmp_path, cores):
    """The ESP8266 build does not freeze micros.fwota (frozen/micros/manifest.py): micros.ota
    answers an `ota fw` line that there is no firmware OTA, and the tool says what to use."""
    from microsctl.firmware.compile import compile_package
    from microsctl.flashing import profiles

    code = tmp_path / "core"
    compile_package(code)
    (code / "micros" / "fwota.mpy").unlink()
    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    monkeypatch.setenv("MICROS_AUTHKEY", KEY)
    n = make_node(board="esp8266", sets=[f"authkey={KEY}"], code=code)
    with Shell(n.port) as sh:
        assert sh.cmd("ota fw info") == ("Error: MicroPython has no firmware OTA on linux: update over USB "
                                         "(invoke update)")  # sys.platform is the host's on the sim
    with pytest.raises(MicrosError) as err:
        fwota.push(cores["new"].read_bytes(), n.port)
    assert "\n" not in str(err.value) and "invoke update" in str(err.value) and "invoke flash" in str(err.value)
