"""The virtual board: real MicroPython running the real micrOS core on loopback."""
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from microsctl import BUILD, PORTS, MicrosError
from microsctl.flashing import fsimage
from microsctl.flashing import profiles
from microsctl.flashing import schema
from microsctl.run import micropython, show, stop_process

# MICROS_SIM_CORE=frozen: nodes given no core of their own run the one frozen into the binary
CORE_ENV = "MICROS_SIM_CORE"
RESET_EXIT = 75  # machine.reset() on the virtual board (ports/unix/machine.py)
SIM_ROOT = BUILD / "sim"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_port_free(port, host="127.0.0.1"):
    """Refuse, in one line, a port something already listens on: the node's own bind would
    fail after boot with a traceback. SO_REUSEADDR as the node's asyncio.start_server sets it
    (micropython extmod/asyncio/stream.py), so a port in TIME_WAIT is not taken for busy."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            raise MicrosError(f"port {port} on {host} is in use ({err.strerror or err}): "
                              "stop what listens there, or pick another port with --port") from err


def _port(port):
    try:
        return int(port)
    except ValueError as err:
        raise MicrosError(f"--port takes a TCP port number, not {port!r}") from err


def host_dns():
    """The host's first IPv4 nameserver (/etc/resolv.conf): the virtual station's DNS server,
    as DHCP gives a board its LAN's."""
    try:
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) > 1 and parts[0] == "nameserver" and parts[1].count(".") == 3:
                return parts[1]
    except OSError:
        pass
    return "127.0.0.1"


def write_config(path, cfg):
    """Write node_config.json the way the node does: temp file, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(cfg))
    os.replace(tmp, path)


# The virtual board's own modules (its "C drivers"), as .mpy: compiled from .py
# on the node they would cost the compiler's RAM, which a board never spends;
# -O3 (no line-number tables) keeps the RAM of their bytecode small too.
PORT_MODULES = ("chip", "chips", "chiprtc", "ledc", "lwip", "machine", "machmore", "network", "ntptime", "time", "webrepl", "LM_sim", "flashdev",
                "devices", "dht", "neopixel", "esp32")


def port_mpy():
    from microsctl.firmware.compile import compile_files

    return compile_files([PORTS / "unix" / f"{m}.py" for m in PORT_MODULES], BUILD / "sim-port-O3", "ports/unix/", opt=3)


_FROZEN_BOOT = {}  # (binary, its mtime) -> has simboot frozen in
PORT_FROZEN = ".frozen/ports/unix"  # where a binary has the stand-ins frozen (as simboot.py says)


def frozen_simboot(exe):
    """Whether a MicroPython binary has the virtual board's boot script and stand-ins frozen in
    (ports/unix/manifest.py: shared/tools/unix-frozen.sh, invoke build --board unix): then the
    sim starts as `micropython -m simboot`, its code running in place as a board's would."""
    try:
        key = (exe, os.stat(exe).st_mtime_ns)
    except OSError:
        return False
    if key not in _FROZEN_BOOT:
        try:
            out = subprocess.run([exe, "-c", "help('modules')"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        _FROZEN_BOOT[key] = "simboot" in out.split() and "ports/unix/machine" in out.split()
    return _FROZEN_BOOT[key]


def board_mpy(board):
    """The board's own frozen module (boards/<B>/micros_board.py) compiled, as the
    firmware build freezes it; the directory that holds it."""
    from microsctl.firmware.compile import compile_files

    return compile_files([board.dir / "micros_board.py"], BUILD / "sim-board" / board.name, f"boards/{board.name}/")


def sim_board(name):
    """--board: the board the virtual node impersonates (invoke boards lists them)."""
    from microsctl.firmware import boards

    b = boards.get(name or "sim")
    if b.host_binary:
        raise MicrosError(f"--board {name}: that is the MicroPython binary the virtual board runs on, not a board "
                          f"to impersonate: give it as --micropython build/{b.name}/{b.firmware.file}")
    return b


def frozen_core(exe=None):
    """The micrOS version frozen into a MicroPython binary, or None when it has none."""
    argv = [micropython(exe), "-c", "import sys;sys.path[:]=['.frozen'];import micros;print(micros.VERSION)"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MicrosError(f"{argv[0]} does not run here ({err}): give a MicroPython unix-port binary") from err
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


class SimNode:
    """One virtual node: its own filesystem folder, kept across reboots.
    board: the board it impersonates (its chip's rules in ports/unix/chip.py and
    its micros_board module); default the plain virtual board `sim`."""

    def __init__(self, name, root=SIM_ROOT, heap="128k", code=None, flash=None, romfs=None, board=None,
                 host="127.0.0.1", frozen=False, micropython=None, drive=False):
        self.board = sim_board(board)
        self.drive = drive  # LM_sim's set_clock, step_clock and edge exist only then (tests)
        self.name = name
        self.host = host  # the loopback address its shell binds: its address on the virtual LAN
        self.frozen = frozen  # the core frozen into the MicroPython binary (invoke build --board unix)
        self.micropython = micropython  # the binary; default: run.micropython() ($MICROS_MICROPYTHON)
        self.romfs = Path(romfs) if romfs else None  # core from a ROMFS image (invoke build --board sim)
        self.flash = Path(flash) if flash else None  # boot from a flash image file's filesystem
        self.dir = Path(root) / name
        self.fs = self.dir / "fs"
        self.heap = heap
        self.code = Path(code) if code else None
        self.proc = None
        self.rc = None
        self.boots = 0
        self._thread = None
        self._stop = False

    @property
    def config_path(self):
        return self.fs / "node_config.json"

    def config(self):
        if self.flash:
            return self._flash_config()
        return json.loads(self.config_path.read_text())

    def prepare(self, profile="default", sets=None, port=None, fresh=False):
        """Lay out the node's filesystem: main.py, rescue.mpy and node_config.json."""
        # its address is its static IP, as a board keeps its first one; each boot's --host (or the
        # default, which a fresh node learns at its first STA join) wins over a kept devip
        sets = list(sets or []) + self._devip(sets)
        if self.flash:
            return self._prepare_flash(profile, sets, port, fresh)
        # everything is checked before anything on the node's filesystem changes
        if self.config_path.exists() and not fresh:
            try:
                cfg = schema.merge(self.config(), schema.parse_sets(sets), system=False)
            except ValueError as err:
                raise MicrosError(f"{self.config_path} is not valid JSON; use --fresh to start over") from err
        else:
            cfg = profiles.config(profile, sets)
        if port is not None:
            cfg["socport"] = schema.validate("socport", _port(port))
        key = profiles.authkey(profile)  # the shell key from the secrets layer: auth on, as flashed
        if key:
            cfg["authkey"] = key
        if fresh and self.fs.exists():
            shutil.rmtree(self.fs)
        self.fs.mkdir(parents=True, exist_ok=True)
        for name, data in fsimage.boot_files().items():  # main.py and rescue.mpy
            (self.fs / name).write_bytes(data)
        write_config(self.config_path, cfg)
        return cfg

    def _devip(self, sets):
        if self.host != "127.0.0.1":
            return [f"devip={self.host}"]
        if any(str(s).strip().startswith("devip=") for s in sets or ()):  # --set devip=... as given
            return []
        try:  # a devip kept from an earlier --host: back to a fresh node's
            kept = self.config().get("devip") if (self.flash or self.config_path).exists() else None
        except (MicrosError, ValueError):  # unreadable: prepare() says so, or starts it over
            kept = None
        return ["devip=n/a"] if kept not in (None, "n/a", self.host) else []

    # -- booting from a flash image (invoke flash --board sim) --
    def _flash_config(self):
        from microsctl.flashing import flash

        cfg, note = flash.read_sim_config(self._flash_board(), self.flash)
        if cfg is None:
            raise MicrosError(f"virtual node {self.name}: {note}")
        return cfg

    def _flash_board(self):
        """The sim board as its flash image lays it out: the ESP32 OTA layout (simota.py) or the plain one."""
        from microsctl.firmware import boards
        from microsctl.node import simota

        return simota.board() if self._is_ota() else boards.get("sim")

    def _is_ota(self):
        from microsctl.node import simota

        return simota.is_ota(self.flash)

    def _prepare_flash(self, profile, sets, port, fresh):
        """A missing image (or --fresh) is flashed from the profile; a kept one boots as it is,
        with --set/--port values provisioned into its filesystem."""
        from microsctl.firmware import boards
        from microsctl.flashing import flash

        board = boards.get("sim")
        sets = list(sets or []) + ([f"socport={_port(port)}"] if port is not None else [])
        self.dir.mkdir(parents=True, exist_ok=True)
        if fresh or not self.flash.exists():
            flash.flash(board, self.flash, profile, sets=sets)
        elif sets:
            cfg = schema.merge(self._flash_config(), schema.parse_sets(sets))
            flash.update_sim_config(self._flash_board(), self.flash, cfg)
        return self._flash_config()

    @property
    def port(self):
        return self.config()["socport"]

    def code_dir(self):
        """Where the `micros` package comes from: given, or the core as .mpy
        (as on a board, where it is frozen bytecode; .py would need the compiler's RAM)."""
        if self.code:
            return self.code
        from microsctl.firmware.compile import compile_package

        out = BUILD / "sim-mpy"
        compile_package(out)
        return out

    def argv(self):
        exe = self.micropython or micropython()
        if not self.flash and frozen_simboot(exe):
            boot = ["-m", "simboot"]  # frozen into the binary: runs in place (ports/unix/manifest.py)
        else:
            boot = [str(PORTS / "unix" / ("flashboot.py" if self.flash else "simboot.py"))]
        return [
            exe,
            "-X", f"heapsize={self._heap()}",
            *boot,
            *self._fs_args(),
            *self._code_args(),
        ]

    def _heap(self):
        """-X heapsize: --heap, and when the core boots from the flash image's ROMFS (the plain or
        the OTA layout) room for it on top: the unix port has no mmap, so flashboot.py reads it
        into the heap; a board maps it."""
        if not self.flash or self.frozen:
            return self.heap
        from microsctl.node import simota

        return f"{simota.heap_kib(self.heap)}k"

    def _code_args(self):
        if self.frozen:
            return ["--frozen"]
        if self.flash and not self.romfs and self._is_ota():
            return []  # the OTA layout: flashboot.py --ota boots the slot the bootloader picks
        if self.flash and not self.romfs:
            romfs_at = self._flash_romfs()
            if romfs_at is not None:  # the core from the ROMFS in the image's firmware region
                return ["--romfs-at", str(romfs_at)]
        if self.romfs:
            if not self.romfs.exists():
                raise MicrosError(f"no ROMFS image {self.romfs}: run 'invoke build --board sim' first")
            return ["--romfs", str(self.romfs)]
        if self.code is None and os.environ.get(CORE_ENV) == "frozen":  # e.g. the whole test suite
            return ["--frozen"]
        return [str(self.code_dir())]

    def _flash_romfs(self):
        """Offset of a ROMFS image in the flash image's firmware region, or None."""
        from microsctl.firmware import boards

        off = boards.get("sim").firmware.offset
        with open(self.flash, "rb") as f:
            f.seek(off)
            return off if f.read(3) == b"\xd2\xcd\x31" else None

    def _fs_args(self):
        if not self.flash:
            return [str(self.fs)]
        if self._is_ota():  # the vfs partition after the table's last (ports/unix/idfboot.py)
            return [str(self.flash), "--ota"]
        from microsctl.firmware import boards
        from microsctl.flashing import geometry

        # the filesystem runs to the end of the image's flash, as the `vfs` partition does on an ESP32
        fs = geometry.for_image(boards.get("sim"), self.flash).filesystem
        return [str(self.flash), str(fs.offset), str(fs.size)]  # for flashboot.py

    def env(self):
        env = dict(os.environ)
        env["MICROS_SIM_NODE"] = self.name
        env["MICROS_SIM_IP"] = self.host
        env.setdefault("MICROS_SIM_DNS", host_dns())  # the station's DNS server (ports/unix/network.py)
        env["MICROS_SIM_PORTMPY"] = str(port_mpy())
        env["MICROS_SIM_BOARD"] = str(board_mpy(self.board))
        env["MICROS_SIM_RTCMEM"] = str(self.dir / "rtcmem")  # RTC user memory, kept across resets
        if self.drive:  # else only if asked for in the environment (MICROS_SIM_DRIVE=1 invoke sim)
            env["MICROS_SIM_DRIVE"] = "1"
        if not self.board.is_virtual:  # the shims behave as this chip's port (ports/unix/chip.py)
            env["MICROS_SIM_CHIP"] = self.board.chip
            env["MICROS_SIM_RTC"] = str(self.dir / "rtc")  # the chip's RTC memory, kept across resets
        return env

    def run(self, stdout=None):
        """Run in the foreground; a reboot restarts the node. Returns the exit code."""
        argv = self.argv()
        show(argv)
        (self.dir / "rtc").unlink(missing_ok=True)  # power-on: the RTC memory is blank
        (self.dir / "rtcmem").unlink(missing_ok=True)
        while True:
            self.boots += 1
            self.proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.STDOUT, env=self.env())
            rc = self.rc = self.proc.wait()
            if rc != RESET_EXIT or self._stop:
                return rc
            print(f"[sim] {self.name} reboots", file=sys.stderr, flush=True)

    def boot_log(self, until="micrOS shell on", timeout=10):
        """Boot once, return what the node printed up to the line containing `until`."""
        proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=self.env(), text=True)
        lines = []
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            for line in proc.stdout:
                lines.append(line)
                if until in line:
                    break
        finally:
            timer.cancel()
            proc.kill()
            proc.wait()
        return "".join(lines)

    # -- background use (tests, benchmarks) --
    def start(self, log=None, timeout=10, wait=True):
        self._stop = False
        self.log = Path(log or self.dir / "node.log")
        out = open(self.log, "ab")
        self._thread = threading.Thread(target=self.run, kwargs={"stdout": out}, daemon=True)
        self._thread.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10, boots=None):
        """Wait until the shell accepts connections (after boot number `boots`)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._thread is not None and not self._thread.is_alive():
                raise MicrosError(f"virtual node {self.name} exited with status {self.rc} before its shell came up; "
                                  f"see {getattr(self, 'log', 'its output')}")
            if (boots is None or self.boots >= boots) and self.proc and self.proc.poll() is None:
                try:
                    socket.create_connection((self.host, self.port), 0.2).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise MicrosError(f"virtual node {self.name} did not start its shell; see {getattr(self, 'log', 'its output')}")

    def stop(self):
        self._stop = True
        stop_process(self.proc)
        if self._thread:
            self._thread.join(5)
