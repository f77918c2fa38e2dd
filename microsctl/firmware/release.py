"""Release assets and their index, made by .github/workflows/release.yml.

    python -m microsctl.firmware.release --version v0.1.0 --url URL [--build build] [--out dist]

collects every build/<BOARD>/build-info.json, copies each board's firmware to
dist/micros-<BOARD>[-<VARIANT>]-<version>.<ext> and writes dist/release-index.json,
which `invoke fetch` reads:

    {"version": "v0.1.0", "micropython": "v1.28.0",
     "images": [{"board": "ESP8266_GENERIC", "variant": "", "version": "v0.1.0",
                 "file": "micros-ESP8266_GENERIC-v0.1.0.bin", "url": "<URL>/<file>",
                 "size": 621584, "sha256": "<hex>", "offset": "0x0", "chip": "esp8266",
                 "mpy": "6.3"}]}

`board` is BOARD or BOARD-VARIANT; `version` is the micrOS release tag.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from microsctl import BUILD, MicrosError
from microsctl.firmware import boards
from microsctl.firmware.build import micros_version, sha256, toolchain

INDEX = "release-index.json"


def asset_name(board, version):
    ext = Path(board.firmware.file).suffix or ".bin"
    return f"micros-{board.full_name}-{version}{ext}"


def collect(version, url, build_dir=BUILD, out="dist"):
    """Copy the images into `out` and write the index; returns the index dict."""
    tag = version.lstrip("v")
    if tag != micros_version():
        raise MicrosError(f"tag {version} does not match micros VERSION {micros_version()}: "
                          "bump frozen/micros/__init__.py or tag the right commit")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for info_path in sorted(Path(build_dir).glob("*/build-info.json")):
        info = json.loads(info_path.read_text())
        board = boards.get(info["board"], info.get("variant") or None)
        src = info_path.parent / board.firmware.file
        if not src.exists():
            raise MicrosError(f"{info_path} has no {board.firmware.file} beside it: rebuild {board.full_name}")
        digest = sha256(src)
        recorded = info["artefacts"].get(board.firmware.file, {}).get("sha256")
        if recorded != digest:
            raise MicrosError(f"{src} differs from its build-info.json: rebuild {board.full_name}")
        name = asset_name(board, version)
        shutil.copyfile(src, out / name)
        images.append({
            "board": board.full_name,  # BOARD or BOARD-VARIANT: what `invoke fetch` matches
            "variant": board.variant,
            "version": version,
            "file": name,
            "url": f"{url.rstrip('/')}/{name}",
            "size": src.stat().st_size,
            "sha256": digest,
            "offset": hex(board.firmware.offset),
            "chip": board.chip,
            "mpy": board.mpy.tag,
        })
    if not images:
        raise MicrosError(f"no build-info.json under {build_dir}: run 'invoke build --board B' first")
    index = {"version": version, "micropython": toolchain()["micropython"], "images": images}
    (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m microsctl.firmware.release", description=__doc__.splitlines()[0])
    ap.add_argument("--version", required=True, help="release tag, e.g. v0.1.0")
    ap.add_argument("--url", required=True, help="where the assets will be downloadable from")
    ap.add_argument("--build", default=str(BUILD), help="folder holding build/<BOARD>/ (default build)")
    ap.add_argument("--out", default="dist", help="output folder (default dist)")
    args = ap.parse_args(argv)
    try:
        index = collect(args.version, args.url, args.build, args.out)
    except MicrosError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for img in index["images"]:
        print(f"{img['file']}  {img['size']} B  {img['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
