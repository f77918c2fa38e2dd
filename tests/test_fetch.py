"""invoke fetch / flash --prebuilt: the whole path from a release the tests build
(microsctl.firmware.release) over local HTTP servers that answer like GitHub release
downloads (latest/download -> download/<tag> -> a signed asset URL on another host),
into the cache, onto a board. No internet: every server is on 127.0.0.1."""
import hashlib
import http.server
import json
import os
import threading
import urllib.parse

import pytest
from invoke import Context

from microsctl import MicrosError
from microsctl import cli
from microsctl.emulator.esprom import EspRom
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.firmware import manifest
from microsctl.firmware import release
from microsctl.flashing import fetch
from microsctl.flashing import flash
from tests.flashkit import fake_firmware, mount_files, set_secrets

VERSION = "v" + build.micros_version()


class _Server:
    def __init__(self, handler):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.srv.owner = self
        self.base = f"http://127.0.0.1:{self.srv.server_address[1]}"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class _Objects(http.server.BaseHTTPRequestHandler):
    """The asset store: /o/<key>?sig=... -> (bytes, declared length)."""

    def do_GET(self):
        path = urllib.parse.urlparse(self.path)
        got = self.server.owner.blobs.get(path.path)
        if got is None or "sig=" not in path.query:
            self.send_error(404)
            return
        data, length = got
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length if length is not None else len(data)))
        self.end_headers()
        self.wfile.write(data)  # a declared length above len(data): a cut transfer

    def log_message(self, *a):
        pass


class _Releases(http.server.BaseHTTPRequestHandler):
    """github.com/<owner>/<name>/releases/{latest/download,download/<tag>}/<asset>, both 302s."""

    def do_GET(self):
        gh = self.server.owner
        parts = urllib.parse.urlparse(self.path).path.strip("/").split("/")
        if len(parts) == 6 and "/".join(parts[:2]) == gh.repo and parts[2:4] == ["releases", "latest"] \
                and parts[4] == "download" and gh.latest:
            return self._redirect(f"/{gh.repo}/releases/download/{gh.latest}/{parts[5]}")
        if len(parts) == 6 and "/".join(parts[:2]) == gh.repo and parts[2:4] == ["releases", "download"]:
            key = f"/o/{parts[4]}-{parts[5]}"
            if key in gh.objects.blobs:
                return self._redirect(f"{gh.objects.base}{key}?sig=abc&exp=1", code=302)
        self.send_error(404)

    def _redirect(self, where, code=302):
        self.send_response(code)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class GitHub(_Server):
    """Releases of the project's repository, as GitHub serves their assets."""

    def __init__(self, repo):
        super().__init__(_Releases)
        self.repo, self.latest = repo, None
        self.objects = _Server(_Objects)
        self.objects.blobs = {}

    def publish(self, tag, dist, latest=True):
        for p in sorted(dist.iterdir()):
            self.put(tag, p.name, p.read_bytes())
        if latest:
            self.latest = tag

    def put(self, tag, name, data, length=None):
        self.objects.blobs[f"/o/{tag}-{name}"] = (data, length)

    def close(self):
        super().close()
        self.objects.close()


@pytest.fixture
def github(monkeypatch, tmp_path):
    """The project's GitHub on loopback; no index or cache given by the environment."""
    gh = GitHub(release.repository())
    monkeypatch.setattr(release, "GITHUB", gh.base)
    monkeypatch.delenv("MICROS_INDEX", raising=False)
    monkeypatch.setenv("MICROS_CACHE", str(tmp_path / "cache"))
    yield gh
    gh.close()


def frozen_names(board):
    """mp_frozen_names as MicroPython's tools/mpy-tool.py lays it out for the board's manifest."""
    return b"".join(t.encode() + b"\0" for t in manifest.for_board(board).targets() if t.endswith(".py")) + b"\0"


def micros_image(board, size, seed=1, tmp=None):
    """An ESP firmware image with the micrOS core frozen in (its frozen-module names), or for
    the virtual board the real ROMFS image `invoke build --board sim` makes."""
    if board.is_virtual:
        return build.build_sim(board, out=tmp / "sim-build").read_bytes()
    # a valid image for the chip (flash checks it), the names inside its app
    return fake_firmware(size, seed=seed, chip=board.chip, extra=frozen_names(board))


def make_release(tmp_path, images):
    """build/<BOARD>/ as `invoke build` leaves it, then the release assets and index."""
    for b, data in images:
        out = tmp_path / "build" / b.full_name
        out.mkdir(parents=True)
        fw = out / b.firmware.file
        fw.write_bytes(data)
        build.write_info(out, b, [], [fw], image={"tag": "t", "id": "sha256:0"})
    dist = tmp_path / "dist"
    release.collect(VERSION, release.download_url(VERSION), tmp_path / "build", dist)
    return dist


def cached_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_fetch_with_no_options_follows_github_redirects_into_the_user_cache(github, tmp_path, monkeypatch, capsys):
    b = boards.get("esp8266")
    img = micros_image(b, 120_000)
    github.publish(VERSION, make_release(tmp_path, [(b, img)]))
    monkeypatch.delenv("MICROS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # platformdirs' user cache on Linux
    cli.fetch(Context(), board="esp8266")
    out = capsys.readouterr()
    files = cached_files(tmp_path / "xdg")
    assert [f.read_bytes() for f in files] == [img]
    assert files[0].parent.name == hashlib.sha256(img).hexdigest()
    assert str(files[0].relative_to(tmp_path / "xdg")).startswith(os.path.join("micros", "firmware", b.full_name))
    assert f"{b.full_name} {VERSION.lstrip('v')}: {files[0]}" in out.out
    assert "120.0/120.0 kB" in out.err  # rich's progress, at the end of the transfer
    for key in [k for k in github.objects.blobs if k.endswith(".bin")]:
        del github.objects.blobs[key]  # a second fetch of the same release: the cached copy, re-verified
    cli.fetch(Context(), board="esp8266")
    assert "cached, sha256 verified" in capsys.readouterr().err


def test_index_from_the_environment_and_the_option(github, tmp_path, monkeypatch):
    b = boards.get("esp32")
    img = micros_image(b, 50_000)
    dist = make_release(tmp_path, [(b, img)])
    github.publish(VERSION, dist, latest=False)  # no latest release: the default index is a 404
    with pytest.raises(MicrosError, match="HTTP 404.*--index URL or set MICROS_INDEX"):
        fetch.fetch(b)
    monkeypatch.setenv("MICROS_INDEX", f"{github.base}/{github.repo}/releases/download/{VERSION}/release-index.json")
    assert fetch.fetch(b)[0].read_bytes() == img
    monkeypatch.setenv("MICROS_INDEX", f"{github.base}/nowhere.json")
    path, _ = fetch.fetch(b, index=str(dist / "release-index.json"))  # --index wins; a path works
    assert path.read_bytes() == img


def test_newest_release_by_default_and_a_version_on_request(github, tmp_path):
    b = boards.get("esp32c3")
    old, new = micros_image(b, 40_000, seed=2), micros_image(b, 41_000, seed=3)
    dist = make_release(tmp_path, [(b, new)])
    index = json.loads((dist / "release-index.json").read_text())
    older = dict(index["images"][0], version="v0.0.9", file="old.bin", size=len(old),
                 sha256=hashlib.sha256(old).hexdigest(), url=release.download_url("v0.0.9") + "/old.bin")
    index["images"].insert(0, older)
    github.publish(VERSION, dist)
    github.put(VERSION, "release-index.json", json.dumps(index).encode())
    github.put("v0.0.9", "old.bin", old)
    assert fetch.fetch(b)[0].read_bytes() == new
    assert fetch.fetch(b, "0.0.9")[0].read_bytes() == old
    assert fetch.fetch(b, "v0.0.9")[0].read_bytes() == old
    with pytest.raises(MicrosError, match="no version 9.9.9 for ESP32_GENERIC_C3: available are 0.0.9, "):
        fetch.fetch(b, "9.9.9")


def test_bad_sha256_in_the_index_never_deletes_or_replaces_a_good_cached_image(github, tmp_path):
    b = boards.get("esp32")
    good = micros_image(b, 60_000)
    github.publish(VERSION, make_release(tmp_path, [(b, good)]))
    path, _ = fetch.fetch(b)
    stat = path.stat()
    index = json.loads((tmp_path / "dist" / "release-index.json").read_text())
    for bad_sha, served in (("0" * 64, good), (hashlib.sha256(b"x").hexdigest(), good[:-1] + b"x")):
        index["images"][0]["sha256"] = bad_sha
        github.put(VERSION, "release-index.json", json.dumps(index).encode())
        github.put(VERSION, index["images"][0]["file"], served)
        with pytest.raises(MicrosError, match="does not match the sha256 in the index"):
            fetch.fetch(b)
        assert path.read_bytes() == good and path.stat().st_mtime_ns == stat.st_mtime_ns
        assert cached_files(tmp_path / "cache") == [path]  # no .part left, nothing else kept


def test_a_cut_or_oversized_transfer_leaves_nothing(github, tmp_path):
    b = boards.get("esp32s3")
    img = micros_image(b, 80_000)
    dist = make_release(tmp_path, [(b, img)])
    github.publish(VERSION, dist)
    name = json.loads((dist / "release-index.json").read_text())["images"][0]["file"]
    github.put(VERSION, name, img[:30_000], len(img))
    with pytest.raises(MicrosError, match="cut off|stopped at"):
        fetch.fetch(b)
    github.put(VERSION, name, img + b"more")
    with pytest.raises(MicrosError, match="larger than the 80000 bytes"):
        fetch.fetch(b)
    assert cached_files(tmp_path / "cache") == []


def test_a_variant_is_never_served_the_default_board_image(github, tmp_path):
    b = boards.get("esp8266")
    github.publish(VERSION, make_release(tmp_path, [(b, micros_image(b, 30_000))]))
    with pytest.raises(MicrosError, match="no prebuilt image for ESP8266_GENERIC-FLASH_1M in the index: it has ESP8266_GENERIC"):
        fetch.fetch(boards.get("esp8266", "FLASH_1M"))
    with pytest.raises(MicrosError, match="no prebuilt image for ESP32_GENERIC "):
        fetch.fetch(boards.get("esp32"))


def test_a_stock_micropython_image_is_refused(github, tmp_path):
    """Only micrOS images (core frozen in) are flashed from an index: there is no stock fallback."""
    b = boards.get("esp32")
    github.publish(VERSION, make_release(tmp_path, [(b, fake_firmware(50_000))]))
    with pytest.raises(MicrosError, match="not micrOS firmware"):
        fetch.fetch(b)


@pytest.mark.parametrize("name", ["esp8266", "esp32"])
def test_flash_prebuilt_writes_the_release_image_and_no_second_core(github, tmp_path, monkeypatch, name):
    """invoke flash --board B --prebuilt with no other option: the image from the latest release
    at the firmware offset, the settings in the filesystem, and no micros/ copy of the core there."""
    set_secrets(monkeypatch, tmp_path)
    b = boards.get(name)
    img = micros_image(b, 200_000)
    github.publish(VERSION, make_release(tmp_path, [(b, img)]))
    with EspRom(b.chip, b.flash_bytes) as rom:
        flash.flash(name, rom.url, "default", prebuilt=True)
        if b.chip == "esp8266":  # the image header gets the chip's flash size, 4MB (test_flash_geometry.py)
            img = img[:3] + bytes([0x40 | img[3] & 0x0F]) + img[4:]
        assert bytes(rom.flash.data[b.firmware.offset : b.firmware.offset + len(img)]) == img
        dump = tmp_path / "flash.bin"
        dump.write_bytes(bytes(rom.flash.data))
    files = mount_files(dump, b.filesystem.offset, b.filesystem)
    assert "node_config.json" in files and "main.py" in files
    assert "rescue.mpy" in files  # main.py's rescue (ports/rescue.py), no part of the core
    assert not [f for f in files if "micros" in f.split("/")[:-1] or f.endswith(".mpy") and f != "rescue.mpy"], \
        sorted(files)


def test_flash_prebuilt_on_the_virtual_board(github, tmp_path, monkeypatch):
    set_secrets(monkeypatch, tmp_path)
    b = boards.get("sim")
    img = micros_image(b, 0, tmp=tmp_path)
    github.publish(VERSION, make_release(tmp_path, [(b, img)]))
    out = tmp_path / "sim.img"
    flash.flash("sim", str(out), "default", prebuilt=True)
    data = out.read_bytes()
    assert data[b.firmware.offset : b.firmware.offset + len(img)] == img
    files = mount_files(out, b.filesystem.offset, b.filesystem)
    assert not [f for f in files if f.endswith(".mpy") and f != "rescue.mpy"], sorted(files)


def test_a_redirect_from_https_to_plain_http_is_refused():
    """urllib would follow it; the index is the trust root of every sha256, so it keeps https."""
    import urllib.request

    req = urllib.request.Request("https://github.com/o/n/releases/latest/download/release-index.json")
    redirect = next(h for h in fetch._OPENER.handlers if isinstance(h, urllib.request.HTTPRedirectHandler))
    with pytest.raises(MicrosError, match="not https: refused"):
        redirect.redirect_request(req, None, 302, "Found", {}, "http://evil.example/release-index.json")
    assert redirect.redirect_request(req, None, 302, "Found", {}, "https://objects.example/x?sig=1").full_url \
        == "https://objects.example/x?sig=1"
