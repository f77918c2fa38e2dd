import hashlib
import http.server
import json
import threading

import pytest

from microsctl import MicrosError
from microsctl.firmware import boards
from microsctl.flashing import fetch
from microsctl.flashing import flash
from microsctl.emulator.esprom import EspRom
from tests.flashkit import fake_firmware, mount_files, set_secrets


class Files(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> (bytes, declared length or None)

    def do_GET(self):
        if self.path not in self.files:
            self.send_error(404)
            return
        data, length = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length if length is not None else len(data)))
        self.end_headers()
        self.wfile.write(data)  # a declared length above len(data): a cut transfer

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    Files.files = {}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def publish(base, entries, images):
    """Serve images and an index listing them; returns the index URL."""
    for name, (data, length) in images.items():
        Files.files[f"/fw/{name}"] = (data, length)
    Files.files["/index.json"] = (json.dumps(entries).encode(), None)
    return f"{base}/index.json"


def entry(board, version, name, data, **kw):
    return {"board": board, "version": version, "url": f"fw/{name}", "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), **kw}


def test_good_download_is_verified_cached_and_reused(server, tmp_path, capsys):
    _, base = server
    old, new = fake_firmware(50_000, "1.27.0"), fake_firmware(60_000, "1.28.0", seed=2)
    idx = publish(base, [entry("ESP32_GENERIC", "1.27.0", "a.bin", old), entry("ESP32_GENERIC", "1.28.0", "b.bin", new)],
                  {"a.bin": (old, None), "b.bin": (new, None)})
    b = boards.get("esp32")
    e = fetch.select(fetch.load_index(idx), b)
    assert e["version"] == "1.28.0"  # the newest by default
    path = fetch.download(e, tmp_path)
    assert path.read_bytes() == new and "100%" in capsys.readouterr().err
    Files.files.clear()  # a second fetch needs no server
    assert fetch.download(e, tmp_path) == path
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".part")]


def test_wrong_sha256_leaves_nothing(server, tmp_path):
    _, base = server
    data = fake_firmware(40_000)
    bad = dict(entry("ESP32_GENERIC", "1.28.0", "x.bin", data), sha256="0" * 64)
    idx = publish(base, [bad], {"x.bin": (data, None)})
    e = fetch.select(fetch.load_index(idx), boards.get("esp32"))
    with pytest.raises(MicrosError, match="sha256"):
        fetch.download(e, tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    _, base = server
    data = fake_firmware(80_000)
    idx = publish(base, [entry("ESP32_GENERIC", "1.28.0", "t.bin", data)], {"t.bin": (data[:30_000], len(data))})
    e = fetch.select(fetch.load_index(idx), boards.get("esp32"))
    with pytest.raises(MicrosError, match="cut off|stopped at"):
        fetch.download(e, tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unknown_board_or_version(server, monkeypatch):
    _, base = server
    data = fake_firmware(1000)
    idx = publish(base, [entry("ESP32_GENERIC", "1.28.0", "y.bin", data)], {"y.bin": (data, None)})
    entries = fetch.load_index(idx)
    with pytest.raises(MicrosError, match="no prebuilt image for ESP8266_GENERIC.*ESP32_GENERIC"):
        fetch.select(entries, boards.get("esp8266"))
    with pytest.raises(MicrosError, match="no version 1.99.0.*1.28.0"):
        fetch.select(entries, boards.get("esp32"), "1.99.0")
    with pytest.raises(MicrosError, match="HTTP 404"):
        fetch.load_index(f"{base}/missing.json")
    monkeypatch.delenv("MICROS_INDEX", raising=False)
    with pytest.raises(MicrosError, match="no release index"):
        fetch.index_location(None)


def test_mpy_version_is_checked_against_the_firmware(tmp_path):
    bytecode = {"micros/conf.mpy": b"M\x06\x00\x1f...."}  # as mpy-cross writes it: no native code
    native = {"LM_fast.mpy": bytes([77, 6, (3 << 2) | 2, 31])}  # x64 native code, sub-version 2
    fw = tmp_path / "fw.bin"
    fw.write_bytes(fake_firmware(5000, "1.28.0"))
    assert fetch.firmware_mpy(fw) == (6, 3)
    fetch.check_mpy(bytecode, (6, 3))
    with pytest.raises(MicrosError, match="LM_fast.mpy is mpy 6.2 but the firmware loads mpy 6.3"):
        fetch.check_mpy(native, (6, 3))
    fw.write_bytes(fake_firmware(5000, "1.18"))
    with pytest.raises(MicrosError, match="mpy 6 but the firmware loads mpy 5.0"):
        fetch.check_mpy(bytecode, fetch.firmware_mpy(fw))
    with pytest.raises(MicrosError, match="fix the index entry"):
        fetch.firmware_mpy(fw, {"board": "b", "mpy": "6.3"})
    fw.write_bytes(b"\0" * 100)  # no banner: the index must say
    assert fetch.firmware_mpy(fw, {"board": "b", "mpy": "6.3"}) == (6, 3)
    with pytest.raises(MicrosError, match="add an 'mpy' field"):
        fetch.firmware_mpy(fw, {"board": "b"})


def test_prebuilt_flash_puts_the_compiled_core_in_the_filesystem(server, tmp_path, monkeypatch):
    set_secrets(monkeypatch, tmp_path)
    monkeypatch.setattr(fetch, "CACHE", tmp_path / "cache")
    _, base = server
    b = boards.get("esp32")
    stock = fake_firmware(300_000, "1.28.0")
    old = fake_firmware(300_000, "1.18", seed=3)
    idx = publish(base, [entry(b.name, "1.28.0", "s.bin", stock), entry(b.name, "1.18", "o.bin", old)],
                  {"s.bin": (stock, None), "o.bin": (old, None)})
    with EspRom("esp32", b.flash_bytes) as rom:
        with pytest.raises(MicrosError, match="firmware loads mpy 5.0"):
            flash.flash(b, rom.url, "default", prebuilt="1.18", index=idx)
        assert rom.connections == 0  # refused before anything was written
        flash.flash(b, rom.url, "default", prebuilt=True, index=idx)
        assert bytes(rom.flash.data[b.firmware.offset : b.firmware.offset + len(stock)]) == stock
        img = tmp_path / "flash.bin"
        img.write_bytes(bytes(rom.flash.data))
    files = mount_files(img, b.filesystem.offset, b.filesystem)
    assert "lib/micros/conf.mpy" in files and "lib/micros/core.mpy" in files and "main.py" in files


def test_fetch_signature_uses_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "CACHE", tmp_path / "c")
    _, base = server
    data = fake_firmware(2000)
    idx = publish(base, [entry("ESP8266_GENERIC", "v1.28.0", "e.bin", data)], {"e.bin": (data, None)})
    path, e = fetch.fetch(boards.get("esp8266"), "1.28.0", index=idx, cache=tmp_path / "c")
    assert path.read_bytes() == data and e["version"] == "1.28.0"
