"""Prebuilt micrOS firmware: the release index, verified downloads into the user's cache.

The index (--index URL or path, else MICROS_INDEX, else the latest GitHub release of
the project: microsctl.firmware.release.index_url()) is what
`python -m microsctl.firmware.release` writes, {"images": [...]}, or a bare list of
    {"board": "ESP32_GENERIC", "version": "v0.1.0", "url": "...", "size": N, "sha256": "..."}
(`url` may be relative to the index URL as given). Every image is micrOS firmware,
the core frozen in: nothing else is flashed from an index (a stock MicroPython image
is refused), so `--prebuilt` writes no core into the filesystem.

The cache (platformdirs' user cache directory, or MICROS_CACHE) is content-addressed:
<cache>/<board>/<version>/<sha256>/<file>. A download goes to a temp name beside its
final one and is renamed there only after its size and sha256 match; a cached file
is re-verified before use. So a bad index or a bad transfer never deletes or replaces
a good cached image: the image a wrong sha256 names is another path.
"""
import hashlib
import http.client
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from microsctl import MicrosError
from microsctl.firmware import boards

CHUNK = 64 * 1024
# The frozen micrOS core in a firmware image. An ESP image keeps the names of its frozen
# modules as NUL-terminated strings (mp_frozen_names, written by MicroPython's
# tools/mpy-tool.py); the virtual board's firmware is a ROMFS image (mpremote romfs),
# whose entries carry their names after a length byte.
_FROZEN_CORE = b"micros/core.py\x00"
_ROMFS_MAGIC = b"\xd2\xcd\x31"
_ROMFS_CORE = b"\x08core.mpy"


def index_location(index=None):
    """--index, else $MICROS_INDEX, else the index of the project's latest GitHub release."""
    loc = index or os.environ.get("MICROS_INDEX")
    if not loc:
        from microsctl.firmware.release import index_url

        loc = index_url()
    return str(loc)


def cache_dir(cache=None):
    """--cache, else $MICROS_CACHE, else micros/firmware in the user's cache directory."""
    if cache is not None:
        return Path(cache)
    if os.environ.get("MICROS_CACHE"):
        return Path(os.environ["MICROS_CACHE"])
    import platformdirs

    return platformdirs.user_cache_path("micros", appauthor=False) / "firmware"


def _url(loc):
    if re.match(r"^[a-z][a-z0-9+.-]*://", loc):
        return loc
    return Path(loc).resolve().as_uri()


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Redirects followed, but never from https to plain http: the index is what the sha256
    of every image is checked against, so it keeps the transport it was asked for."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if req.full_url.startswith("https:") and urllib.parse.urlparse(newurl).scheme != "https":
            raise MicrosError(f"{req.full_url} redirects to {newurl}, which is not https: refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_Redirects)


def _open(url, timeout=30):
    """A response, redirects followed (GitHub sends release downloads through two)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise MicrosError(f"unsupported URL {url}: use http(s)://, file:// or a path")
    try:
        return _OPENER.open(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        hint = ": is there a release yet? pass --index URL or set MICROS_INDEX" if err.code == 404 else ""
        raise MicrosError(f"{url}: HTTP {err.code} {err.reason}{hint}") from err
    except (urllib.error.URLError, OSError) as err:
        raise MicrosError(f"cannot reach {url} ({getattr(err, 'reason', err)}): check the address or your network") from err


def load_index(index=None):
    """[entry, ...] with absolute URLs."""
    url = _url(index_location(index))
    with _open(url) as resp:
        raw = resp.read()
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise MicrosError(f"the release index {url} is not valid JSON") from err
    if isinstance(entries, dict):
        entries = entries.get("images", [])
    out = []
    for e in entries if isinstance(entries, list) else []:
        try:
            ent = {"board": str(e["board"]), "version": str(e["version"]).lstrip("v"),
                   "url": urllib.parse.urljoin(url, e["url"]), "size": int(e["size"]),
                   "sha256": str(e["sha256"]).lower(), "mpy": e.get("mpy")}
        except (KeyError, TypeError, ValueError) as err:
            raise MicrosError(f"the release index {url} has a bad entry ({err}): each needs board, version, url, size, sha256") from err
        if not re.fullmatch(r"[0-9a-f]{64}", ent["sha256"]):
            raise MicrosError(f"the release index {url}: sha256 of {ent['board']} {ent['version']} is not 64 hex digits")
        out.append(ent)
    if not out:
        raise MicrosError(f"the release index {url} lists no images")
    return out


def _vkey(v):
    return tuple(int(x) if x.isdigit() else -1 for x in re.split(r"[.-]", v))


def select(entries, board, version=None):
    """The entry for exactly this board and variant (BOARD or BOARD-VARIANT), newest or `version`."""
    mine = [e for e in entries if e["board"].lower() == board.full_name.lower()]
    if not mine:
        have = sorted({e["board"] for e in entries})
        raise MicrosError(f"no prebuilt image for {board.full_name} in the index: it has {', '.join(have)}")
    if version:
        want = str(version).lstrip("v")
        hit = [e for e in mine if e["version"] == want]
        if not hit:
            have = sorted({e["version"] for e in mine}, key=_vkey)
            raise MicrosError(f"no version {want} for {board.full_name}: available are {', '.join(have)}")
        return hit[0]
    return max(mine, key=lambda e: _vkey(e["version"]))


def cache_path(entry, cache=None):
    name = Path(urllib.parse.urlparse(entry["url"]).path).name or "firmware.bin"
    return cache_dir(cache) / entry["board"] / entry["version"] / entry["sha256"] / name


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path, entry):
    return path.is_file() and path.stat().st_size == entry["size"] and _sha256(path) == entry["sha256"]


def _progress(out, name, total):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn("[fetch]", markup=False), BarColumn(bar_width=30), DownloadColumn(),
                   TransferSpeedColumn(), console=Console(file=out))
    return bar, bar.add_task(name, total=total)


def download(entry, cache=None, out=None):
    """The verified image in the cache: downloaded unless a cached copy verifies."""
    out = out or sys.stderr
    dest = cache_path(entry, cache)
    if _verified(dest, entry):
        print(f"[fetch] {dest} (cached, sha256 verified)", file=out)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h, got = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as f, _open(entry["url"]) as resp:
            print(f"[fetch] {entry['url']}", file=out)
            bar, task = _progress(out, dest.name, entry["size"])
            with bar:
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as err:  # IncompleteRead, a reset connection
                        raise MicrosError(f"the download of {entry['url']} was cut off after {got} bytes: run fetch again") from err
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > entry["size"]:
                        raise MicrosError(f"{entry['url']} is larger than the {entry['size']} bytes the index says: not used")
                    h.update(chunk)
                    f.write(chunk)
                    bar.update(task, completed=got)
        if got != entry["size"]:
            raise MicrosError(f"the download of {entry['url']} stopped at {got} of {entry['size']} bytes: run fetch again")
        if h.hexdigest() != entry["sha256"]:
            raise MicrosError(f"{entry['url']} does not match the sha256 in the index: not used (a corrupt or tampered file)")
        os.replace(tmp, dest)  # only a file with the index's sha256 ever lands at this name
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, Exception) and not isinstance(err, MicrosError):
            raise MicrosError(f"the download of {entry['url']} failed ({err}): run fetch again") from err
        raise
    print(f"[fetch] {dest} ({got} bytes, sha256 verified)", file=out)
    return dest


def is_micros_image(data):
    """True for firmware with the micrOS core frozen in (an ESP image or the sim's ROMFS image)."""
    if data[:3] == _ROMFS_MAGIC:
        return _ROMFS_CORE in data
    return _FROZEN_CORE in data


def fetch(board, version=None, index=None, cache=None):
    """(path of the verified micrOS image, its index entry)."""
    boards.flashable(board)
    entry = select(load_index(index), board, version)
    path = download(entry, cache)
    if not is_micros_image(path.read_bytes()):
        raise MicrosError(f"{entry['url']} is not micrOS firmware (no frozen micrOS core in it): "
                          "use an index made by `python -m microsctl.firmware.release`")
    return path, entry
