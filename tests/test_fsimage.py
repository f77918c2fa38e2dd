import dataclasses
import json

import pytest

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.flashing import fsimage
from microsctl.flashing import profiles
from tests.flashkit import mount_files

BOARDS = ["ESP8266_GENERIC", "ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3", "sim"]


@pytest.mark.parametrize("name", BOARDS)
def test_image_mounts_in_micropython_with_the_config(name, tmp_path):
    b = boards.get(name)
    cfg = profiles.config("lamp", ["devfid=mounted01"])
    img = fsimage.image_for(b, cfg)
    fs = b.filesystem
    assert len(img) == fs.size == fs.block_count * fs.block_size
    path = fsimage.write_atomic(tmp_path / "fs.img", img)
    files = mount_files(path, 0, fs)  # the real MicroPython, vfs.VfsLfs2 over our block device
    assert set(files) == {"node_config.json", "main.py", "rescue.mpy"}
    got = json.loads(files["node_config.json"])
    want = dict(cfg, pinmap=fsimage.board_pinmap(b))
    assert got == want
    assert fsimage.read_config(fs, img) == want  # and littlefs-python agrees


def test_pinmap_left_to_the_user_the_board_module_has_the_pins():
    # each board's micros_board.py (frozen with the core) holds its own pins: no pinmap needed
    for name in ("esp32", "esp8266", "esp32c3", "esp32s3", "sim"):
        b = boards.get(name)
        assert fsimage.builtin_pins(b) == b.pins
        assert fsimage.board_pinmap(b) == "n/a"
    assert fsimage.board_pinmap(boards.get("esp32c3"), "builtin:3") == "builtin:3"


def test_profile_modules_are_copied(tmp_path, monkeypatch):
    b = boards.get("sim")
    files = fsimage.node_files(b, profiles.config("default"), modules=["sim", "system"])
    assert "LM_sim.py" in files and "LM_system.py" not in files  # frozen modules are not copied
    with pytest.raises(MicrosError, match="not found"):
        fsimage.node_files(b, profiles.config("default"), modules=["nosuchmodule"])


def test_refused_before_anything_is_written(tmp_path):
    b = boards.get("esp32")
    out = tmp_path / "fs.img"
    with pytest.raises(MicrosError, match="littlefs allows 255"):
        fsimage.build(b.filesystem, {"a" * 256 + ".py": b"x"})
    small = dataclasses.replace(b.filesystem, size=16 * 4096)
    with pytest.raises(MicrosError, match="partition"):
        fsimage.build(small, {"big.bin": bytes(20 * 4096)})
    with pytest.raises(MicrosError, match="unknown profile"):
        fsimage.write_atomic(out, fsimage.image_for(b, profiles.config("nosuch")))
    assert not out.exists() and not list(tmp_path.iterdir())


def test_update_keeps_the_nodes_other_files():
    fs = boards.get("sim").filesystem
    img = fsimage.build(fs, {"node_config.json": b"{}", "LM_mine.py": b"def f(): pass\n"})
    new = fsimage.update(fs, img, {"node_config.json": b'{"devfid": "x"}'})
    assert fsimage.read_files(fs, new) == {"node_config.json": b'{"devfid": "x"}', "LM_mine.py": b"def f(): pass\n"}


def test_erased_region_is_reported():
    fs = boards.get("sim").filesystem
    with pytest.raises(MicrosError, match="no littlefs"):
        fsimage.read_config(fs, b"\xff" * fs.size)
