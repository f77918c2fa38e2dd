"""Helpers for the flashing tests: fake firmware, MicroPython mount checks, secrets."""
import json
import subprocess

from microsctl import PORTS
from microsctl.emulator import images
from microsctl.node.sim import micropython

SECRETS = {"MICROS_STAPWD": "wifi-secret-9", "MICROS_APPWD": "admin-secret-9", "MICROS_AUTHKEY": "shell-key-9"}


def fake_firmware(size, release="1.28.0", seed=1, chip="esp32", extra=b""):
    """A firmware.bin of about `size` bytes laid out as MicroPython's makeimg.py lays it out for
    the chip, with valid esptool images (flash checks them), MicroPython's banner, and filler
    that zlib packs to about 65 % as it does a real firmware.bin."""
    return images.firmware(chip, size, seed, release, extra=extra)


def mount_files(image_path, offset, fs):
    """The files of a littlefs region as the real MicroPython (vfs.VfsLfs2) reads them."""
    argv = [micropython(), str(PORTS / "unix" / "flashdev.py"), str(image_path), str(offset), str(fs.size),
            str(fs.block_size), str(fs.read_size), str(fs.prog_size), str(fs.lookahead_size)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr or out.stdout
    return json.loads(out.stdout)


def mount_config(image_path, offset, fs):
    return json.loads(mount_files(image_path, offset, fs)["node_config.json"])


def set_secrets(monkeypatch, tmp_path):
    """Secrets from the environment only: no secrets file of the developer is read."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    monkeypatch.delenv("MICROS_SECRETS", raising=False)
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
