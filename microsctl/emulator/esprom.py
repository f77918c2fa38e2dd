"""An emulated ESP ROM loader (and flasher stub) on loopback, for the real esptool.

    with EspRom("esp32", flash_size=8 * 1024 * 1024) as rom:
        esptool.main(["--chip", "esp32", "--port", rom.url, "write-flash", ...])
        rom.flash.data[0x1000:...]
        rom.boot().outcome == "mounted"   # the port's boot of that flash (emulator/boot.py)

Written for the tests and `invoke bench`, where esp32-mock-bootloader falls short:
its ESP8266 ROM replies carry 4 status bytes (the ESP8266 ROM sends 2), flash writes
overwrite instead of erase-then-AND as NOR flash does, block `seq` numbers are not
checked, and there is one fixed 4 MB flash per process. Here each instance has its
own flash of any size (its JEDEC flash ID says so, and esptool's detection finds it),
NOR semantics (erase sets 0xFF, a write can only clear bits), seq and checksum checks,
the stub's streaming read-flash, byte counters, and faults to inject: a stuck bit (a bad cell, so MD5 verification must
fail), a baud rate above which data packets arrive damaged, and a link that drops
after so many bytes of read-flash data (a read that stops early).

Only what esptool needs from a ROM loader is modelled; register reads return
plausible values for chip detection, crystal and flash-ID probes, zero otherwise.
Chips: ESP8266 and ESP32 (detected by their magic register), ESP32-C3/S3 and later
(detected by the chip ID of GET_SECURITY_INFO).
"""
import hashlib
import socket
import struct
import threading
import zlib

from esptool.loader import ESPLoader
from esptool.targets import CHIP_DEFS

C = ESPLoader.ESP_CMDS
SECTOR = 4096
_END, _ESC, _ESC_END, _ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
ROM_INVALID = 0x05  # ROM: "invalid message"
ROM_BAD_DATA = 0x07  # ROM: checksum/seq error (esptool names 0x107 "invalid CRC")
STUB_BAD_DATA = 0xC1  # stub: bad data checksum
STUB_UNKNOWN = 0xFF  # stub: unsupported command


def slip(data):
    return bytes([_END]) + data.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + bytes([_END])


class Flash:
    """NOR flash: erase sets whole sectors to 0xFF, programming can only clear bits."""

    def __init__(self, size):
        self.size = size
        self.data = bytearray(b"\xff" * size)
        self.stuck = {}  # offset -> bit mask that always reads 0 (a worn cell)

    def erase(self, offset, size):
        end = min(self.size, -(-(offset + size) // SECTOR) * SECTOR)
        start = offset - offset % SECTOR
        self.data[start:end] = b"\xff" * (end - start)

    def program(self, offset, chunk):
        end = offset + len(chunk)
        if end > self.size:
            raise ValueError("write past the end of flash")
        old = self.data[offset:end]
        self.data[offset:end] = bytes(a & b for a, b in zip(old, chunk))
        for off, mask in self.stuck.items():
            if offset <= off < end:
                self.data[off] &= ~mask & 0xFF


class EspRom:
    """One chip held in download mode, served on socket://127.0.0.1:PORT."""

    def __init__(self, chip="esp32", flash_size=4 * 1024 * 1024, max_baud=None):
        self.chip = chip.lower().replace("-", "")
        self.rom = CHIP_DEFS[self.chip]
        self.flash = Flash(flash_size)
        self.max_baud = max_baud  # above this baud rate, data packets arrive damaged
        self.read_stop_after = None  # bytes of read-flash data sent before the link drops
        self.bytes_in = 0  # bytes on the wire, host -> chip
        self.bytes_out = 0
        self.connections = 0
        self.stub = False  # the flasher stub runs until the chip is reset
        self.log = []  # command names, for tests
        self._lock = threading.Lock()
        self._srv = None
        self._thread = None
        self._stop = threading.Event()

    # -- lifecycle --
    def start(self):
        self._srv = socket.socket()
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(2)
        self._srv.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self):
        return f"socket://127.0.0.1:{self._srv.getsockname()[1]}"

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(3)
        if self._srv:
            self._srv.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def boot(self):
        """What the board's firmware makes of this flash at boot (boot.py): flash size from the
        ESP8266 image header or this chip's size, the port's block device, littlefs mounted or not."""
        from microsctl.emulator.boot import boot

        return boot(self.chip, self.flash.data)

    def reset(self):
        """The board's reset into download mode (what esptool's default-reset does over a
        USB-serial adapter; over TCP esptool cannot, so tests call this)."""
        self.stub = False

    def reset_counters(self):
        self.bytes_in = self.bytes_out = 0
        self.log.clear()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    _Session(self, conn).run()
                except (OSError, ConnectionError):
                    pass

    # -- chip facts --
    def read_reg(self, addr, regs):
        rom = self.rom
        if addr == ESPLoader.CHIP_DETECT_MAGIC_REG_ADDR and getattr(rom, "USES_MAGIC_VALUE", False):
            return rom.MAGIC_VALUE
        if addr == getattr(rom, "UART_CLKDIV_REG", None):
            # a divider that makes esptool's crystal estimate come out at a standard value
            xtal = 26e6 if self.chip == "esp8266" else 40e6
            return int(xtal * getattr(rom, "XTAL_CLK_DIVIDER", 1) / ESPLoader.ESP_ROM_BAUD)
        spi = getattr(rom, "SPI_REG_BASE", None)
        if spi is not None and spi <= addr < spi + 0x100:
            if addr == spi:  # SPI_CMD_REG: the user command has completed
                return 0
            if addr == spi + rom.SPI_W0_OFFS:
                cmd = regs.get(spi + rom.SPI_USR2_OFFS, 0) & 0xFF
                if cmd == 0x9F:  # JEDEC ID: manufacturer, type, log2(size)
                    return (self.flash.size.bit_length() - 1) << 16 | 0x40 << 8 | 0xEF
                if cmd == 0x5A:  # SFDP signature
                    return 0x50444653
                return 0
        return regs.get(addr, 0)


class _Session:
    """One esptool connection. The chip's mode outlives it: once uploaded, the flasher stub
    answers the next connection too (esptool's --after no-reset-stub / --before no-reset chain)."""

    def __init__(self, dev, conn):
        self.dev = dev
        self.conn = conn
        self.conn.settimeout(0.2)
        self.baud = ESPLoader.ESP_ROM_BAUD
        self.regs = {}
        self.buf = bytearray()
        self.write = None  # (offset, block_size, next seq, decompressor or None)

    # -- wire --
    def send(self, frame):
        self.dev.bytes_out += len(frame)
        self.conn.sendall(frame)

    def frames(self):
        """SLIP frames from the host, decoded."""
        frame, inside, esc = bytearray(), False, False
        while not self.dev._stop.is_set():
            try:
                chunk = self.conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return
            self.dev.bytes_in += len(chunk)
            for b in chunk:
                if b == _END:
                    if inside and frame:
                        yield bytes(frame)
                        frame = bytearray()
                    inside = True
                elif not inside:
                    continue
                elif esc:
                    frame.append(_END if b == _ESC_END else _ESC if b == _ESC_ESC else b)
                    esc = False
                elif b == _ESC:
                    esc = True
                else:
                    frame.append(b)

    def reply(self, op, value=0, data=b"", error=0):
        status = bytes([1 if error else 0, error])
        if not self.dev.stub and self.dev.chip != "esp8266":
            status += b"\0\0"  # ESP32-family ROMs send two more (reserved) status bytes
        body = data + status
        self.send(slip(struct.pack("<BBHI", 1, op, len(body), value) + body))

    # -- commands --
    def run(self):
        it = self.frames()
        for frame in it:
            if len(frame) < 8 or frame[0] != 0:
                continue
            _, op, size, chk = struct.unpack_from("<BBHI", frame)
            data = frame[8 : 8 + size]
            name = next((k for k, v in C.items() if v == op), hex(op))
            self.dev.log.append(name)
            handler = getattr(self, "op_" + name.lower(), None)
            if handler is None:
                self.reply(op, error=STUB_UNKNOWN if self.dev.stub else ROM_INVALID)
                continue
            if handler(op, data, chk, it) is False:
                return

    def _bad_data(self):
        return STUB_BAD_DATA if self.dev.stub else ROM_BAD_DATA

    def op_sync(self, op, data, chk, it):
        for _ in range(8):  # the ROM answers a SYNC several times
            self.reply(op, value=0 if self.dev.stub else 0x20120707)

    def op_get_security_info(self, op, data, chk, it):
        # ESP32-C3/S3 and later answer with their chip ID; the ESP32 and ESP8266 ROMs do not know it
        if getattr(self.dev.rom, "USES_MAGIC_VALUE", True):
            return self.reply(op, error=STUB_UNKNOWN if self.dev.stub else ROM_INVALID)
        flags, crypt_cnt, purposes = 0, 0, bytes(7)
        info = struct.pack("<IB", flags, crypt_cnt) + purposes + struct.pack("<II", self.dev.rom.IMAGE_CHIP_ID, 0)
        self.reply(op, data=info)

    def op_read_reg(self, op, data, chk, it):
        self.reply(op, value=self.dev.read_reg(struct.unpack_from("<I", data)[0], self.regs))

    def op_write_reg(self, op, data, chk, it):
        for i in range(0, len(data) - 15, 16):
            addr, value, mask, _delay = struct.unpack_from("<IIII", data, i)
            self.regs[addr] = (self.regs.get(addr, 0) & ~mask) | (value & mask)
        self.reply(op)

    def op_spi_set_params(self, op, data, chk, it):
        self.reply(op)

    op_spi_attach = op_spi_set_params

    def op_change_baudrate(self, op, data, chk, it):
        self.baud = struct.unpack_from("<I", data)[0]
        self.reply(op)

    def op_mem_begin(self, op, data, chk, it):
        self.reply(op)

    def op_mem_data(self, op, data, chk, it):
        payload = data[16:]
        ok = (ESPLoader.checksum(payload) & 0xFF) == (chk & 0xFF)
        self.reply(op, error=0 if ok else self._bad_data())

    def op_mem_end(self, op, data, chk, it):
        stay, entry = struct.unpack_from("<II", data)
        self.reply(op)
        if not stay and entry:  # the uploaded flasher stub starts and greets
            self.dev.stub = True
            self.send(slip(b"OHAI"))

    def _begin(self, op, data, compressed):
        size, _blocks, block_size, offset = struct.unpack_from("<IIII", data)
        if offset + size > self.dev.flash.size and not compressed:
            self.reply(op, error=self._bad_data())
            return
        # the ROM erases up front; the stub erases as it goes: same result here
        self.dev.flash.erase(offset, min(size, self.dev.flash.size - offset))
        self.write = [offset, block_size, 0, zlib.decompressobj() if compressed else None]
        self.reply(op)

    def _data(self, op, data, chk):
        length, seq = struct.unpack_from("<II", data)
        payload = data[16 : 16 + length]
        damaged = self.dev.max_baud is not None and self.baud > self.dev.max_baud
        if self.write is None or damaged or len(payload) != length:
            return self.reply(op, error=self._bad_data())
        if (ESPLoader.checksum(payload) & 0xFF) != (chk & 0xFF) or seq != self.write[2]:
            return self.reply(op, error=self._bad_data())
        offset, block_size, _, z = self.write
        try:
            chunk = z.decompress(payload) if z else payload
            self.dev.flash.program(offset, chunk)
        except (zlib.error, ValueError):
            return self.reply(op, error=self._bad_data())
        self.write[0] += len(chunk)
        self.write[2] += 1
        self.reply(op)

    def op_flash_begin(self, op, data, chk, it):
        self._begin(op, data, compressed=False)

    def op_flash_defl_begin(self, op, data, chk, it):
        self._begin(op, data, compressed=True)

    def op_flash_data(self, op, data, chk, it):
        self._data(op, data, chk)

    op_flash_defl_data = op_flash_data

    def op_flash_end(self, op, data, chk, it):
        self.write = None
        self.reply(op)

    op_flash_defl_end = op_flash_end

    def op_spi_flash_md5(self, op, data, chk, it):
        if self.dev.chip == "esp8266" and not self.dev.stub:
            return self.reply(op, error=ROM_INVALID)  # the ESP8266 ROM has no MD5
        addr, size = struct.unpack_from("<II", data)
        digest = hashlib.md5(self.dev.flash.data[addr : addr + size]).digest()
        self.reply(op, data=digest if self.dev.stub else digest.hex().encode())

    def op_erase_flash(self, op, data, chk, it):
        if not self.dev.stub:
            return self.reply(op, error=ROM_INVALID)
        self.dev.flash.erase(0, self.dev.flash.size)
        self.reply(op)

    def op_erase_region(self, op, data, chk, it):
        if not self.dev.stub:
            return self.reply(op, error=ROM_INVALID)
        offset, size = struct.unpack_from("<II", data)
        if offset % SECTOR or size % SECTOR:
            return self.reply(op, error=STUB_BAD_DATA)
        self.dev.flash.erase(offset, size)
        self.reply(op)

    def op_read_flash(self, op, data, chk, it):
        if not self.dev.stub:
            return self.reply(op, error=ROM_INVALID)
        offset, length, packet, in_flight = struct.unpack_from("<IIII", data)
        self.reply(op)
        blob = bytes(self.dev.flash.data[offset : offset + length])
        sent = acked = 0
        while acked < length:
            while sent < length and sent - acked < packet * max(1, in_flight):
                if self.dev.read_stop_after is not None:
                    if self.dev.read_stop_after <= 0:
                        return False  # the link drops mid-read: the connection ends here
                    self.dev.read_stop_after -= packet
                self.send(slip(blob[sent : sent + packet]))
                sent += packet
            ack = next(it, None)
            if ack is None:
                return False
            acked = struct.unpack_from("<I", ack)[0]
        self.send(slip(hashlib.md5(blob).digest()))

    def op_run_user_code(self, op, data, chk, it):
        return False  # the chip leaves download mode: no reply, connection done
