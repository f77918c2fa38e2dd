"""ESP8266 irom0: what the frozen set costs there, measured and estimated.

Frozen bytecode is C data (`frozen_content.c`, written by MicroPython's
tools/makemanifest.py and tools/mpy-tool.py): raw-code structs, bytecode,
constant objects and a pool of the qstrs the firmware does not already have.
The ESP8266 linker script puts all of it (.rodata) in irom0, beside the
firmware's code.

`measure()` produces the real figure: it runs the port's own make rules of a
MicroPython source tree (ports/esp8266/Makefile, py/mkrules.mk: qstr headers,
frozen_content.c, its object) with Debian's xtensa-lx106-elf-gcc and
picolibc, and sums the object's .rodata sections. The ESP8266 SDK is not
packaged by Debian; the qstr pass only needs the port's own macros, so the
SDK headers it names are stood in by empty files. The recorded result,
boards/<BOARD>/frozen-size.json, calibrates the dry run's estimate:
micrOS frozen = (measured micrOS .rodata / its .mpy bytes, same mpy-cross as
the dry run) x today's .mpy bytes; other packages (asyncio) at their measured
.rodata. Re-measure after a large change to the core:

    python -m microsctl.firmware.irom0 --mpy-src /path/to/micropython-v1.28.0 --write

(the tree needs lib/micropython-lib, a submodule, for the port manifest).
"""
import argparse
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from microsctl import ROOT, MicrosError

MEASURED_FILE = "frozen-size.json"
CROSS = "xtensa-lx106-elf-"
ASYNCIO = "$(MPY_DIR)/extmod/asyncio"

# what gets measured: the port manifest alone, + asyncio, + micrOS (the board manifest)
SETS = {
    "port": 'include("$(PORT_DIR)/boards/manifest.py")\n',
    "port_asyncio": 'include("$(PORT_DIR)/boards/manifest.py")\ninclude("$(MPY_DIR)/extmod/asyncio")\n',
}


# -- ELF ------------------------------------------------------------------------
def elf_sections(path):
    """{name: size} of every section of a 32-bit little-endian ELF (object or executable)."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise MicrosError(f"{path}: not a 32-bit little-endian ELF file")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)
    strtab = struct.unpack_from("<I", data, shoff + shstrndx * shentsize + 0x10)[0]
    out = {}
    for i in range(1, shnum):
        base = shoff + i * shentsize
        name_off, = struct.unpack_from("<I", data, base)
        name = data[strtab + name_off:data.index(b"\0", strtab + name_off)].decode()
        out[name] = out.get(name, 0) + struct.unpack_from("<I", data, base + 0x14)[0]
    return out


def rodata_bytes(sections):
    """What lands in irom0 from frozen_content.o: its read-only data (.rodata, .rodata.*)."""
    return sum(n for s, n in sections.items() if s == ".rodata" or s.startswith(".rodata."))


# -- the recorded measurement and the estimate ----------------------------------------
def measured(board):
    """boards/<BOARD>/frozen-size.json as a dict, or None."""
    path = Path(board.dir) / MEASURED_FILE
    return json.loads(path.read_text()) if path.exists() else None


def factor(m):
    """Frozen .rodata per .mpy byte of the micrOS core, from a measurement."""
    return m["micros"]["rodata"] / m["micros"]["mpy_bytes"]


def micros_estimate(board, micros_mpy):
    """(bytes, how) for the micrOS core frozen on this board."""
    m = measured(board)
    if m is None:
        return None
    return round(factor(m) * micros_mpy), f"x{factor(m):.3f} measured"


def package_estimate(board, path):
    m = measured(board)
    if m and path in m.get("packages", {}):
        return m["packages"][path]["rodata"]
    return None


# -- measuring ------------------------------------------------------------------------
def _need(tool, apt):
    if not shutil.which(tool):
        raise MicrosError(f"{tool} not found: apt-get install {apt}")


def _make(mpy_src, build, board, target, stubs, extra=(), capture=True):
    argv = ["make", "-C", str(Path(mpy_src) / "ports" / "esp8266"), f"BOARD={board}",
            f"CROSS_COMPILE={CROSS}", f"ESP_SDK={stubs}", f"BUILD={build}", *extra, f"{build}/{target}"]
    return subprocess.run(argv, capture_output=capture, text=True)


def _qstr_headers(mpy_src, build, board, stubs):
    """The port's genhdr/ (qstrs the firmware has), with empty stand-ins for missing SDK headers."""
    for _ in range(64):
        proc = _make(mpy_src, build, board, "genhdr/qstrdefs.generated.h", stubs)
        if proc.returncode == 0:
            return
        missing = set(re.findall(r"fatal error: ([\w./-]+): No such file", proc.stdout + proc.stderr))
        if not missing:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise MicrosError(f"the esp8266 qstr pass failed: {' | '.join(tail)}")
        for name in missing:
            p = Path(stubs) / "include" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
    raise MicrosError("the esp8266 qstr pass still misses headers after 64 rounds")


def _frozen_object(mpy_src, build, board, stubs, manifest, micros_root):
    for old in ("frozen_content.c", "frozen_content.o", "frozen_content.P"):
        (Path(build) / old).unlink(missing_ok=True)
    shutil.rmtree(Path(build) / "frozen_mpy", ignore_errors=True)
    proc = _make(mpy_src, build, board, "frozen_content.o", stubs,
                 [f"FROZEN_MANIFEST={manifest}", f"MICROPY_MANIFEST_MICROS_DIR={micros_root}"])
    if proc.returncode:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise MicrosError(f"frozen_content.o for {Path(manifest).name} failed: {' | '.join(tail)}")
    return elf_sections(Path(build) / "frozen_content.o")


def measure(mpy_src, board, micros_root=ROOT):
    """Measure the frozen .rodata of the port manifest, + asyncio, + the board manifest."""
    from microsctl.firmware import build as fw

    mpy_src = Path(mpy_src).resolve()
    if not (mpy_src / "ports" / "esp8266" / "Makefile").exists():
        raise MicrosError(f"{mpy_src} is not a MicroPython source tree (no ports/esp8266/Makefile)")
    _need(f"{CROSS}gcc", "gcc-xtensa-lx106 picolibc-xtensa-lx106-elf")
    if not (mpy_src / "mpy-cross" / "build" / "mpy-cross").exists():
        subprocess.run(["make", "-C", str(mpy_src / "mpy-cross")], check=True, capture_output=True)
    version = subprocess.run([str(mpy_src / "mpy-cross" / "build" / "mpy-cross"), "--version"],
                             capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build, stubs = tmp / "build", tmp / "sdk"
        (stubs / "include").mkdir(parents=True)
        _qstr_headers(mpy_src, build, board.mpy_board, stubs)
        rodata = {}
        for name, text in SETS.items():
            (tmp / f"{name}.py").write_text(text)
            rodata[name] = rodata_bytes(_frozen_object(mpy_src, build, board.mpy_board, stubs,
                                                       tmp / f"{name}.py", micros_root))
        # asyncio's .mpy as makemanifest compiled it: checks the model on code it was not fitted to
        asyncio_mpy = sum(f.stat().st_size for f in (build / "frozen_mpy" / "asyncio").glob("*.mpy"))
        full = rodata_bytes(_frozen_object(mpy_src, build, board.mpy_board, stubs,
                                           Path(micros_root) / "boards" / board.name / "manifest.py", micros_root))
        rows, _ = fw.compile_frozen(board, tmp / "mpy")
    return {
        "micropython": version,
        "compiler": subprocess.run([f"{CROSS}gcc", "--version"], capture_output=True, text=True).stdout.splitlines()[0],
        "method": "python -m microsctl.firmware.irom0 --mpy-src TREE: the port's make rules build "
                  "frozen_content.o; .rodata summed (see microsctl/firmware/irom0.py)",
        "port_manifest": {"rodata": rodata["port"]},
        "packages": {ASYNCIO: {"rodata": rodata["port_asyncio"] - rodata["port"], "mpy_bytes": asyncio_mpy}},
        "micros": {"rodata": full - rodata["port_asyncio"],
                   "mpy_bytes": sum(r["mpy_bytes"] for r in rows), "modules": len(rows),
                   "mpy_cross": fw._tool_version([fw.mpy_cross(), "--version"])},
        "board_manifest_rodata": full,
    }


def main(argv=None):
    from microsctl.firmware import boards

    p = argparse.ArgumentParser(prog="python -m microsctl.firmware.irom0",
                                description="Measure what the frozen set costs in ESP8266 irom0.")
    p.add_argument("--mpy-src", required=True, help="MicroPython source tree at the pinned tag, with lib/micropython-lib")
    p.add_argument("--board", default="esp8266", help="board name or alias (default esp8266)")
    p.add_argument("--write", action="store_true", help=f"record the result in boards/<BOARD>/{MEASURED_FILE}")
    args = p.parse_args(argv)
    try:
        board = boards.get(args.board)
        result = measure(args.mpy_src, board)
        text = json.dumps(result, indent=2) + "\n"
        if args.write:
            dest = Path(board.dir) / MEASURED_FILE
            tmp = dest.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(dest)
            print(f"recorded in {dest}", file=sys.stderr)
        print(text, end="")
    except MicrosError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
