"""invoke build: the exact Docker commands, the Dockerfile, the ESP8266 budget,
build-info.json and the release index. Nothing here needs a Docker engine."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from microsctl import ROOT, MicrosError
from microsctl.firmware import boards
from microsctl.firmware import build
from microsctl.firmware import irom0
from microsctl.firmware import release

TC = json.loads((ROOT / "docker" / "toolchain.json").read_text())
MPY = TC["micropython"]
DOCKERFILE = ROOT / "Dockerfile"
AMD64 = {"esp8266": ["--platform", "linux/amd64"], "esp32": []}  # xtensa-lx106 is x86-64 only


def run_argv(board, variant=""):
    """What `docker run` must look like for a board (uid/gid 1000, epoch 1700000000, 4 jobs)."""
    b = boards.get(board, variant or None)
    port = b.port
    argv = ["docker", "run", "--rm", "--network", "none", *AMD64[port], "--user", "1000:1000", "-e", "HOME=/tmp",
            "-e", "SOURCE_DATE_EPOCH=1700000000"]
    if port == "esp32":
        argv += ["-e", "IDFPY_FLAGS=-DMICROPY_MANIFEST_MICROS_DIR=/micros"]
    argv += ["-v", f"{ROOT}:/micros:ro", "-v", f"{ROOT}/build/{b.full_name}:/out",
             "-w", "/opt/micropython", f"micros-build:{port}-{MPY}",
             "make", "-C", f"ports/{port}", "-j4", f"BOARD={b.name}"]
    if variant:
        argv.append(f"BOARD_VARIANT={variant}")
    argv += ["BUILD=/out/mp", f"FROZEN_MANIFEST=/micros/boards/{b.name}/manifest.py",
             "MICROPY_MANIFEST_MICROS_DIR=/micros"]
    return argv


@pytest.mark.parametrize(
    "board,variant",
    [("esp8266", ""), ("esp8266", "FLASH_2M_ROMFS"), ("esp32", ""), ("esp32", "SPIRAM"),
     ("esp32c3", ""), ("esp32s3", "")],
)
def test_exact_docker_commands(board, variant):
    b = boards.get(board, variant or None)
    cmds = build.plan(b, 4, 1000, 1000, 1700000000)
    image_build = ["docker", "build", *AMD64[b.port], "--target", b.port, "--build-arg", f"MICROPY_VERSION={MPY}",
                   "--build-arg", f"DEBIAN_IMAGE={TC['debian_image']}"]
    if b.port == "esp32":
        image_build += ["--build-arg", f"IDF_IMAGE={TC['idf_image']}"]
    # the Dockerfile at the top level, the repository as build context
    image_build += ["-t", f"micros-build:{b.port}-{MPY}", "-f", f"{ROOT}/Dockerfile", str(ROOT)]
    assert cmds == [image_build, run_argv(board, variant)]
    assert all(isinstance(a, str) for argv in cmds for a in argv)


def test_tty_adds_it_and_nothing_else():
    b = boards.get("esp32")
    plain = build.docker_run_argv(b, 2, 5, 6, 7)
    tty = build.docker_run_argv(b, 2, 5, 6, 7, tty=True)
    assert tty == plain[:3] + ["-it"] + plain[3:]


def test_esp32_family_shares_one_image_and_esp8266_its_own():
    tags = {boards.get(n).name: build.image_tag(boards.get(n).port) for n in ("esp8266", "esp32", "esp32c3", "esp32s3")}
    assert tags["ESP32_GENERIC"] == tags["ESP32_GENERIC_C3"] == tags["ESP32_GENERIC_S3"] == f"micros-build:esp32-{MPY}"
    assert tags["ESP8266_GENERIC"] == f"micros-build:esp8266-{MPY}"


def _dockerfile_args(text):
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))


def test_dockerfile_pins_equal_toolchain_json():
    text = DOCKERFILE.read_text()
    args = _dockerfile_args(text)
    assert args["MICROPY_VERSION"] == TC["micropython"]
    # a base image is "tag@sha256:..." once its digest is known, the tag alone until then
    assert args["IDF_IMAGE"] == build.base_image("idf") and TC["idf_image"] == f"espressif/idf:{TC['idf']}"
    assert args["DEBIAN_IMAGE"] == build.base_image("debian")
    for key in ("idf_image_digest", "debian_image_digest", "xtensa_lx106_sha256"):
        assert key in TC and (TC[key] is None or re.fullmatch(r"(sha256:)?[0-9a-f]{64}", TC[key]))
    assert re.search(r"^ARG XTENSA_LX106_SHA256=(\S*)$", text, re.M).group(1) == (TC["xtensa_lx106_sha256"] or "")
    assert args["XTENSA_LX106_URL"] == TC["xtensa_lx106_url"]
    assert args["ESPTOOL_VERSION"] == TC["esptool_esp8266"]
    assert f"SOURCE_DATE_EPOCH={TC['source_date_epoch']}" in text
    # the release and the IDF it recommends (flash-layouts.md: v5.5.1 for v1.27/v1.28)
    assert (TC["micropython"], TC["idf"]) == ("v1.28.0", "v5.5.1")


def test_dockerfile_reproducible_and_unprivileged():
    text = DOCKERFILE.read_text()
    assert re.findall(r"^FROM \S+ AS (\w+)$", text, re.M) == ["source", "esp8266", "esp32", "unix"]
    assert re.findall(r"^USER (\S+)$", text, re.M) == ["10001:10001"] * 3
    assert "--uid 10001" in text and build.IMAGE_UID == 10001
    assert "MICROPY_GIT_TAG=" in text and "MICROPY_GIT_HASH=" in text
    env = (ROOT / "docker" / "micros-env.sh").read_text()
    assert "export MICROPY_GIT_TAG MICROPY_GIT_HASH" in env
    sdk = (ROOT / "docker" / "sdkconfig.reproducible").read_text()
    assert "CONFIG_APP_REPRODUCIBLE_BUILD=y" in sdk.splitlines()
    assert "sdkconfig.base" in text  # appended to the esp32 port's board sdkconfig
    # fixed container paths, never a host path
    assert "/opt/micropython" in text and str(ROOT) not in text


def test_dockerfile_is_hadolint_clean():
    exe = Path(sys.executable).with_name("hadolint")
    hadolint = str(exe) if exe.exists() else "hadolint"
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dry_run_prints_commands_and_budget(capsys):
    assert build.build("esp8266", dry_run=True, jobs=3) is None
    out, err = capsys.readouterr()
    assert "irom0 ESP8266_GENERIC: 988.0 KiB" in out and "fits" in out
    # every variant's budget is reported, the chosen one decides
    assert "irom0 ESP8266_GENERIC-FLASH_1M: 572.0 KiB" in out and "DOES NOT FIT" in out
    assert "ESP8266_GENERIC-FLASH_2M_ROMFS: 668.0 KiB" in out
    assert "$ docker build --platform linux/amd64 --target esp8266" in err
    assert "$ docker run --rm --network none" in err and "make -C ports/esp8266 -j3 BOARD=ESP8266_GENERIC" in err


@pytest.mark.parametrize("variant", ["FLASH_1M", "FLASH_512K"])
def test_budget_refuses_what_cannot_fit(variant, capsys):
    with pytest.raises(MicrosError, match=f"does not fit ESP8266_GENERIC-{variant}'s irom0"):
        build.build("esp8266", variant, dry_run=True)
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_budget_counts_asyncio_on_esp8266_only():
    import tempfile

    b = boards.get("esp8266", "FLASH_2M_ROMFS")
    with tempfile.TemporaryDirectory() as tmp:
        rows, res = build.compile_frozen(b, tmp)
    info = build.budget(b, rows, res)
    asyncio = irom0.measured(b)["packages"]["$(MPY_DIR)/extmod/asyncio"]["rodata"]
    assert info["extra_frozen_estimate"] == {"$(MPY_DIR)/extmod/asyncio": asyncio}
    assert info["needed"] == info["micros_frozen_estimate"] + asyncio
    assert info["free"] == 668 * 1024 - b.irom0.stock_used - b.irom0.margin
    assert build.budget(boards.get("esp32"), rows, res) is None


def test_no_engine_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(build, "engine_problem", lambda: "no Docker engine answers at unix:///var/run/docker.sock")
    monkeypatch.setattr(build, "run", lambda argv: pytest.fail("must not run docker"))
    with pytest.raises(MicrosError) as e:
        build.build("esp32s3")
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("cannot build ESP32_GENERIC_S3 here: no Docker engine answers")
    assert "invoke fetch --board esp32s3" in msg


def test_invoke_build_task_exits_with_the_line(monkeypatch):
    from invoke import Context, Exit

    from microsctl import cli

    monkeypatch.setattr(build, "engine_problem", lambda: "the docker command is not installed")
    with pytest.raises(Exit) as e:
        cli.build(Context(), board="esp8266")
    assert str(e.value.message).startswith("error: cannot build ESP8266_GENERIC here")


def test_elf_section_size(tmp_path):
    """A hand-made 32-bit ELF with .irom0.text of 0x1234 bytes."""
    import struct

    names = b"\0.shstrtab\0.irom0.text\0"
    shoff = 52 + len(names)
    hdr = bytearray(52)
    hdr[:6] = b"\x7fELF\x01\x01"
    struct.pack_into("<I", hdr, 0x20, shoff)
    struct.pack_into("<HHH", hdr, 0x2E, 40, 3, 1)
    secs = bytearray(40 * 3)
    struct.pack_into("<I", secs, 40, 1)  # .shstrtab
    struct.pack_into("<I", secs, 40 + 0x10, 52)
    struct.pack_into("<I", secs, 80, 11)  # .irom0.text
    struct.pack_into("<I", secs, 80 + 0x14, 0x1234)
    p = tmp_path / "f.elf"
    p.write_bytes(bytes(hdr) + names + bytes(secs))
    assert build.elf_section_size(p, ".irom0.text") == 0x1234
    assert build.elf_section_size(p, ".nope") is None
    assert build.elf_section_size(tmp_path / "missing.elf", ".irom0.text") is None


def fake_build(tmp_path, board, payload):
    b = boards.get(board)
    out = tmp_path / "build" / b.full_name
    out.mkdir(parents=True)
    fw = out / b.firmware.file
    fw.write_bytes(payload)
    build.write_info(out, b, [{"module": "micros/core.py", "opt": 1, "mpy_bytes": 10}], [fw],
                     image={"tag": build.image_tag(b.port), "id": "sha256:abc"})
    return out


def test_build_info_fields(tmp_path):
    out = fake_build(tmp_path, "esp32", b"\xe9firmware")
    info = json.loads((out / "build-info.json").read_text())
    assert info["board"] == "ESP32_GENERIC" and info["micropython"] == MPY and info["idf"] == TC["idf"]
    assert info["image"]["id"] == "sha256:abc"
    assert info["micros"]["version"] == build.micros_version()
    assert set(info["micros"]) == {"version", "commit", "dirty"}
    assert info["frozen"] == [{"module": "micros/core.py", "opt": 1, "mpy_bytes": 10}]
    import hashlib

    assert info["artefacts"]["firmware.bin"] == {"size": 9, "sha256": hashlib.sha256(b"\xe9firmware").hexdigest()}


def test_release_index(tmp_path):
    fake_build(tmp_path, "esp8266", b"A" * 100)
    fake_build(tmp_path, "esp32c3", b"B" * 50)
    ver = "v" + build.micros_version()
    index = release.collect(ver, "https://example.org/dl/", tmp_path / "build", tmp_path / "dist")
    assert index["version"] == ver and index["micropython"] == MPY
    by = {i["board"]: i for i in index["images"]}
    e8 = by["ESP8266_GENERIC"]
    assert e8["file"] == f"micros-ESP8266_GENERIC-{ver}.bin"
    assert e8["url"] == f"https://example.org/dl/{e8['file']}"
    assert (e8["size"], e8["offset"], e8["version"]) == (100, "0x0", ver)
    assert {"board", "version", "url", "size", "sha256", "file", "offset"} <= set(e8)
    assert e8["mpy"] == "6.3"
    assert (tmp_path / "dist" / e8["file"]).read_bytes() == b"A" * 100
    on_disk = json.loads((tmp_path / "dist" / "release-index.json").read_text())
    assert on_disk == index
    with pytest.raises(MicrosError, match="does not match micros VERSION"):
        release.collect("v99.0.0", "https://x", tmp_path / "build", tmp_path / "dist2")


def test_release_refuses_an_image_changed_after_its_build(tmp_path):
    out = fake_build(tmp_path, "esp32s3", b"C" * 10)
    (out / "firmware.bin").write_bytes(b"D" * 10)
    with pytest.raises(MicrosError, match="differs from its build-info.json"):
        release.collect("v" + build.micros_version(), "https://x", tmp_path / "build", tmp_path / "dist")


def test_release_workflow_builds_every_board_and_publishes_the_index():
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    on = wf.get("on", wf.get(True))
    assert on == {"push": {"tags": ["v*"]}}
    jobs = wf["jobs"]
    matrix = jobs["firmware"]["strategy"]["matrix"]["board"]
    # every flashable board; the unix port's binary is a host program, not a release image
    assert sorted(boards.get(m).name for m in matrix) == sorted(b.name for b in boards.all_boards() if not b.host_binary)
    steps = " ".join(str(s.get("run", "")) for s in jobs["firmware"]["steps"])
    assert "invoke build --board ${{ matrix.board }}" in steps
    pub = " ".join(str(s.get("run", "")) for s in jobs["publish"]["steps"])
    assert "python -m microsctl.firmware.release" in pub and "gh release create" in pub
    assert jobs["publish"]["needs"] == "firmware"


def test_release_index_is_what_invoke_fetch_reads(tmp_path):
    """The agreed format: microsctl.flashing.fetch loads our index and picks each board's image."""
    fetch = pytest.importorskip("microsctl.flashing.fetch")
    fake_build(tmp_path, "esp8266", b"E" * 64)
    fake_build(tmp_path, "sim", b"\xd2\xcd\x31" + b"R" * 61)
    ver = "v" + build.micros_version()
    index = release.collect(ver, "https://example.org/dl", tmp_path / "build", tmp_path / "dist")
    entries = fetch.load_index(str(tmp_path / "dist" / "release-index.json"))
    for name in ("esp8266", "sim"):
        b = boards.get(name)
        got = fetch.select(entries, b)
        mine = next(i for i in index["images"] if i["board"] == b.full_name)
        assert (got["url"], got["size"], got["sha256"], got["mpy"]) == (mine["url"], mine["size"], mine["sha256"], "6.3")
        assert got["version"] == build.micros_version()
