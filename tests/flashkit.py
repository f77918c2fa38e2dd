"""Helpers for the flashing tests: fake firmware, MicroPython mount checks, secrets."""
import json
import random
import subprocess

from microsctl import PORTS
from microsctl.node.sim import micropython

SECRETS = {"MICROS_STAPWD": "wifi-secret-9", "MICROS_APPWD": "admin-secret-9"}


def fake_firmware(size, release="1.28.0", seed=1):
    """Firmware-like bytes: an image header, MicroPython's banner, then filler that zlib packs to
    about 65 % as it does a real firmware.bin (5-6 bits of entropy a byte)."""
    rnd = random.Random(seed)
    table = bytes(rnd.choice(range(48)) for _ in range(256))
    head = b"\xe9\x03\x02\x20" + b"\0" * 28 + f"MicroPython v{release} on 2026-04-06; ESP module".encode()
    return (head + rnd.randbytes(size).translate(table))[:size]


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
