"""Release assets and their index, made by .github/workflows/release.yml.

    python -m microsctl.firmware.release --version v0.1.0 [--repo OWNER/NAME | --url URL] [--build build] [--out dist]

collects every build/<BOARD>/build-info.json, copies each board's firmware to
dist/micros-<BOARD>[-<VARIANT>]-<version>.<ext> and writes dist/release-index.json,
which `invoke fetch` reads:

    {"version": "v0.1.0", "micropython": "v1.28.0",
     "images": [{"board": "ESP8266_GENERIC", "variant": "", "version": "v0.1.0",
                 "file": "micros-ESP8266_GENERIC-v0.1.0.bin", "url": "<URL>/<file>",
                 "size": 621584, "sha256": "<hex>", "offset": "0x0", "chip": "esp8266",
                 "mpy": "6.3"}]}

`board` is BOARD or BOARD-VARIANT; `version` is the micrOS release tag.

Where releases live: the project's GitHub repository, written once, as
[project.urls] Repository in pyproject.toml. `invoke fetch` reads the index of its
latest release (index_url()); the workflow passes --repo $GITHUB_REPOSITORY and
publishing from a repository other than that one is refused, so the default index
of the tools always names the repository the images were published in.
"""
import argparse
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

from microsctl import BUILD, ROOT, MicrosError
from microsctl.firmware import boards
from microsctl.firmware.build import micros_version, sha256, toolchain

INDEX = "release-index.json"
GITHUB = "https://github.com"


def repository(pyproject=ROOT / "pyproject.toml"):
    """'owner/name' from pyproject.toml's [project.urls] Repository (else the installed metadata)."""
    url = None
    if Path(pyproject).is_file():
        url = tomllib.loads(Path(pyproject).read_text()).get("project", {}).get("urls", {}).get("Repository")
    else:
        from importlib import metadata

        for line in metadata.metadata("micros").get_all("Project-URL") or []:
            label, _, value = line.partition(",")
            if label.strip().lower() == "repository":
                url = value.strip()
    m = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url or "")
    if not m:
        raise MicrosError(f"pyproject.toml: [project.urls] Repository must be https://github.com/OWNER/NAME, not {url!r}")
    return m.group(1)


def index_url(repo=None):
    """The release index of the project's latest GitHub release (GitHub redirects it to the asset)."""
    return f"{GITHUB}/{repo or repository()}/releases/latest/download/{INDEX}"


def download_url(tag, repo=None):
    """Where a release's assets are downloaded from."""
    return f"{GITHUB}/{repo or repository()}/releases/download/{tag}"


def check_repo(repo):
    """Publishing from another repository would leave `invoke fetch` pointing elsewhere: refused."""
    mine = repository()
    if repo.lower() != mine.lower():
        raise MicrosError(f"this release is published in {repo} but pyproject.toml names {mine} "
                          "([project.urls] Repository): fix that line so `invoke fetch` finds this release")


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
    ap.add_argument("--repo", help="the GitHub repository publishing the release (OWNER/NAME); "
                    "must be the one pyproject.toml names")
    ap.add_argument("--url", help="where the assets will be downloadable from "
                    "(default: the GitHub release download URL of --repo, or of pyproject.toml's repository)")
    ap.add_argument("--build", default=str(BUILD), help="folder holding build/<BOARD>/ (default build)")
    ap.add_argument("--out", default="dist", help="output folder (default dist)")
    args = ap.parse_args(argv)
    try:
        if args.repo:
            check_repo(args.repo)
        index = collect(args.version, args.url or download_url(args.version, args.repo), args.build, args.out)
    except MicrosError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for img in index["images"]:
        print(f"{img['file']}  {img['size']} B  {img['sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
