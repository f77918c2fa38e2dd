"""Prebuilt firmware: a release index, verified downloads into build/cache/, and the
compiled micrOS core that goes into the filesystem of a stock MicroPython image.

The index (--index URL or path, or MICROS_INDEX) is a JSON list of
    {"board": "ESP32_GENERIC", "version": "1.28.0", "url": "...", "size": N, "sha256": "...", "mpy": "6.3"}
(`url` may be relative to the index; `mpy` is optional). A download goes to a temp
name in the cache, is checked for size and sha256, and only then renamed to its
final name: a cut or tampered transfer never leaves a file a later flash could use.

Which .mpy the firmware accepts is read from the image itself: every MicroPython build
embeds its banner "MicroPython vX.Y.Z", and the version fixes the .mpy format. The
image is the thing that gets flashed and its bytes are pinned by the sha256, while an
index field is only a claim about it; so the banner decides, an index `mpy` field is
cross-checked against it (a disagreement is refused), and is used alone only when the
image carries no banner.
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

from microsctl import BUILD, MicrosError

CACHE = BUILD / "cache"
CHUNK = 64 * 1024

# MicroPython release -> .mpy format (major, sub) its VM loads (py/persistentcode.h).
_MPY_BY_RELEASE = [((1, 23), (6, 3)), ((1, 22), (6, 2)), ((1, 20), (6, 1)), ((1, 19), (6, 0)), ((1, 12), (5, 0))]


def index_location(index=None):
    loc = index or os.environ.get("MICROS_INDEX")
    if not loc:
        raise MicrosError("no release index: pass --index URL (or a path), or set MICROS_INDEX")
    return str(loc)


def _url(loc):
    if re.match(r"^[a-z][a-z0-9+.-]*://", loc):
        return loc
    return Path(loc).resolve().as_uri()


def _open(url, timeout=30):
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise MicrosError(f"unsupported URL {url}: use http(s)://, file:// or a path")
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise MicrosError(f"{url}: HTTP {err.code} {err.reason}") from err
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
    names = {board.full_name.lower(), board.name.lower()}
    mine = [e for e in entries if e["board"].lower() in names]
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
    cache = CACHE if cache is None else cache
    name = Path(urllib.parse.urlparse(entry["url"]).path).name or "firmware.bin"
    return Path(cache) / entry["board"] / entry["version"] / name


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download(entry, cache=None, out=None):
    """The verified image in the cache (downloaded if missing or not matching the index)."""
    out = out or sys.stderr
    cache = CACHE if cache is None else cache
    dest = cache_path(entry, cache)
    if dest.is_file():
        if dest.stat().st_size == entry["size"] and _sha256(dest) == entry["sha256"]:
            print(f"[fetch] {dest} (cached, sha256 verified)", file=out)
            return dest
        dest.unlink()  # stale or tampered: fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h, got = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as f, _open(entry["url"]) as resp:
            print(f"[fetch] {entry['url']}", file=out)
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
                pct = 100 * got // max(1, entry["size"])
                print(f"\r[fetch] {got // 1024} / {entry['size'] // 1024} KiB {pct:3d}%", end="", file=out, flush=True)
            print(file=out)
        if got != entry["size"]:
            raise MicrosError(f"the download of {entry['url']} stopped at {got} of {entry['size']} bytes: run fetch again")
        if h.hexdigest() != entry["sha256"]:
            raise MicrosError(f"{entry['url']} does not match the sha256 in the index: not used (a corrupt or tampered file)")
        os.replace(tmp, dest)
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


def fetch(board, version=None, index=None, cache=None):
    """(path of the verified image, its index entry)."""
    entry = select(load_index(index), board, version)
    return download(entry, cache), entry


# -- .mpy compatibility ---------------------------------------------------------------

def mpy_of_release(version):
    v = _vkey(version)[:2]
    for since, mpy in _MPY_BY_RELEASE:
        if v >= since:
            return mpy
    raise MicrosError(f"MicroPython {version} is older than 1.12: its .mpy format is not supported")


def image_release(data):
    """'1.28.0' from the banner a MicroPython image embeds, or None."""
    m = re.search(rb"MicroPython v(\d+\.\d+(?:\.\d+)?)", data)
    return m.group(1).decode() if m else None


def firmware_mpy(path, entry=None):
    """(major, sub) of the .mpy files a firmware image loads: from its banner, cross-checked with the index."""
    data = Path(path).read_bytes()
    release = image_release(data)
    declared = None
    if entry and entry.get("mpy"):
        try:
            major, _, sub = str(entry["mpy"]).partition(".")
            declared = (int(major), int(sub or 0))
        except ValueError as err:
            raise MicrosError(f"the index gives mpy {entry['mpy']!r} for {entry['board']}: expected like 6.3") from err
    found = mpy_of_release(release) if release else None
    if found and declared and found != declared:
        raise MicrosError(
            f"the image says MicroPython {release} (mpy {found[0]}.{found[1]}) but the index says mpy "
            f"{declared[0]}.{declared[1]}: fix the index entry"
        )
    if not (found or declared):
        raise MicrosError(f"cannot tell which .mpy version {Path(path).name} loads: add an 'mpy' field to its index entry")
    return found or declared


def mpy_header(data):
    """(major, sub, arch code) of a compiled .mpy file."""
    if len(data) < 4 or data[0:1] != b"M":
        raise MicrosError("not an .mpy file")
    return data[1], data[2] & 3, data[2] >> 2


def check_mpy(files, want):
    """Every .mpy in {path: bytes} must load on the firmware; refused before anything is written.

    The rule of MicroPython's loader (py/persistentcode.c): the major version must be equal;
    the sub-version is only recorded for, and only checked on, files holding native code."""
    for path, data in files.items():
        if not path.endswith(".mpy"):
            continue
        major, sub, arch = mpy_header(data)
        native = arch != 0
        if major != want[0] or (native and sub != want[1]):
            have = f"{major}.{sub}" if native else f"{major}"
            raise MicrosError(
                f"{path} is mpy {have} but the firmware loads mpy {want[0]}.{want[1]}: "
                "use the mpy-cross that matches the firmware's MicroPython release"
            )


def core_files(board, entry, firmware=None):
    """The micrOS core compiled to .mpy as {'micros/<name>.mpy': bytes}, checked against the firmware."""
    from microsctl.firmware.compile import compile_package

    out = compile_package(BUILD / "prebuilt-core")  # bytecode only: no native code, any arch
    files = {f"micros/{p.name}": p.read_bytes() for p in sorted(out.glob("*.mpy"))}
    fw = firmware or cache_path(entry)
    check_mpy(files, firmware_mpy(fw, entry))
    return files
