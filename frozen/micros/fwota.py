# Firmware updates on the ESP32 family through esp32.Partition (MicroPython v1.28.0
# ports/esp32/esp32_partition.c over ESP-IDF's esp_ota_ops.c). micros.ota loads this
# module for an `ota fw` line of an authenticated client and drops it after;
# micros.core loads it at boot only when .fwota exists (the first boot after an update).
#   ota fw info               -> "fw PLATFORM RUNNING BOOT VERSION"  (slots "none": no esp32.Partition)
#   ota fw begin SIZE SHA256  -> "fw ready CHUNK SLOT"  SLOT: the next update partition
#   ota fw data BASE64        -> "ok"  CHUNK bytes a line (only the last shorter); each
#                                4 KB block is erased when the write reaches it
#   ota fw end                -> "fw switched SLOT"  the slot read back, its sha256 checked,
#                                then set_boot (ESP-IDF checks the image); the node restarts
#   ota fw abort              -> "fw aborted"  (a cut connection aborts too)
# The boot slot changes only in `end`, after the check: until then a reset, a cut or a
# wrong byte leaves the running firmware the one that boots.
# The new firmware's first boot is on trial (the bootloader set it PENDING_VERIFY): settle()
# marks it valid once it passed the health check (the boot ran through, the config loaded,
# the shell serves); else it resets without marking and the bootloader rolls back (a config
# the new firmware could not read is put back first: `end` kept a copy in .fwota.cfg).
import os
import sys
from binascii import a2b_base64, unhexlify
from hashlib import sha256
from micropython import const

CHUNK = const(512)  # a data line: 684 base64 characters, under the shell's line max
_BLOCK = const(4096)  # the flash's erase block (NATIVE_BLOCK_SIZE_BYTES)
_MARK = ".fwota"
_CFG = "node_config.json"
_KEEP = ".fwota.cfg"  # the config as it was before the trial boot
_BAD = "node_config.json.bad"  # where micros.conf moves a config it cannot read
_st = [None, None, 0, 0, None, None]  # the update: owner, slot, size, bytes written, sha256, buffer
_OWNER = const(0)
_SLOT = const(1)
_SIZE = const(2)
_POS = const(3)
_SUM = const(4)
_BUF = const(5)


class FwError(Exception):
    pass


def _label(p):
    return p.info()[4]


def info():
    from micros import VERSION

    run = boot = "none"  # no esp32.Partition (the ESP8266): no firmware OTA
    try:
        from esp32 import Partition

        run = _label(Partition(Partition.RUNNING))
        boot = _label(Partition(Partition.BOOT))
    except ImportError:
        pass
    except OSError:  # a table without app partitions
        run = boot = "-"
    return "fw %s %s %s %s" % (sys.platform, run, boot, VERSION)


def busy():
    return _st[_OWNER] is not None


def cut(cl):
    # cl's connection is gone: its update ends, the slot written so far is never booted
    if _st[_OWNER] is cl:
        _st[:] = [None, None, 0, 0, None, None]


def run(cl, line):
    """One `ota fw ...` line (bytes) of client cl -> the reply; FwError ends the update."""
    if line[7:12] == b"data ":
        cmd, arg = "data", memoryview(line)[12:]
    else:
        cmd, _, arg = line[7:].decode().strip().partition(" ")
    if cmd == "info":
        return info()
    if _st[_OWNER] is not None and _st[_OWNER] is not cl:
        raise FwError("another client is updating this node")
    try:
        return _step(cl, cmd, arg)
    except (OSError, ValueError) as e:  # flash, bad base64 or number
        cut(cl)
        raise FwError("firmware update aborted: %r" % e)
    except FwError:
        cut(cl)
        raise


def _step(cl, cmd, arg):
    st = _st
    if cmd == "data":
        if st[_OWNER] is None:
            raise FwError("no firmware update: send ota fw begin first")
        b = a2b_base64(arg)
        pos, n = st[_POS], len(b)
        if n > st[_SIZE] - pos or (n != CHUNK and pos + n != st[_SIZE]):
            raise FwError("a data line carries %d bytes (the last one fewer)" % CHUNK)
        p = st[_SLOT]
        if pos % _BLOCK == 0:
            p.ioctl(6, pos // _BLOCK)  # erase the block this write starts
        p.writeblocks(pos // _BLOCK, b, pos % _BLOCK)
        st[_POS] = pos + n
        return "ok"
    if cmd == "begin":
        size, digest = arg.split(" ")
        try:
            from esp32 import Partition
        except ImportError:
            raise FwError("MicroPython has no firmware OTA on %s: update over USB (invoke update)" % sys.platform)
        try:
            p = Partition(Partition.RUNNING).get_next_update()
        except OSError:
            raise FwError("no OTA partitions: flash the OTA variant over USB first")
        st[_SIZE] = int(size)
        if not 0 < st[_SIZE] <= p.info()[3]:
            raise FwError("%s B do not fit the %d B slot %s" % (size, p.info()[3], _label(p)))
        st[:] = [cl, p, st[_SIZE], 0, unhexlify(digest), bytearray(CHUNK)]
        return "fw ready %d %s" % (CHUNK, _label(p))
    if st[_OWNER] is None:
        raise FwError("no firmware update: send ota fw begin first")
    if cmd == "end":
        p = st[_SLOT]
        if st[_POS] != st[_SIZE]:
            raise FwError("%d bytes missing" % (st[_SIZE] - st[_POS]))
        if _readback(p, st[_SIZE], st[_BUF]) != st[_SUM]:
            raise FwError("sha256 mismatch: the boot slot is unchanged")
        _copy(_CFG, _KEEP, st[_BUF])  # given back if the new firmware cannot read it
        with open(_MARK, "w") as f:  # the first boot of the new slot is on trial (settle)
            f.write(_label(p))
        try:
            p.set_boot()
        except OSError:
            os.remove(_MARK)
            os.remove(_KEEP)
            raise
        st[:] = [None, None, 0, 0, None, None]
        return "fw switched %s" % _label(p)
    if cmd == "abort":
        cut(cl)
        return "fw aborted"
    raise FwError("unknown ota fw command")


def _readback(p, size, buf):
    # sha256 of what the slot holds, read back a chunk at a time into buf
    h = sha256()
    mv = memoryview(buf)
    pos = 0
    while pos < size:
        n = min(CHUNK, size - pos)
        p.readblocks(pos // _BLOCK, mv[:n], pos % _BLOCK)
        h.update(mv[:n])
        pos += n
    return h.digest()


def _copy(a, b, buf):
    with open(a, "rb") as src, open(b, "wb") as dst:
        while True:
            n = src.readinto(buf)
            if not n:
                return
            dst.write(buf, n)


def _same(a, b):
    # two files byte for byte, a small chunk at a time
    x, y = bytearray(64), bytearray(64)
    try:
        with open(a, "rb") as f, open(b, "rb") as g:
            while True:
                n, m = f.readinto(x), g.readinto(y)
                if n != m or x[:n] != y[:m]:
                    return False
                if not n:
                    return True
    except OSError:
        return False


def settle(healthy):
    """The first boot after a firmware update: keep it or roll back. micros.core calls this
    once the shell serves; healthy: the boot ran through. The config must have loaded too: a
    firmware that could not read it (micros.conf moved it to node_config.json.bad and started
    from defaults) is not kept, and the config goes back in place before the rollback."""
    from esp32 import Partition

    with open(_MARK) as f:
        want = f.read()
    run = _label(Partition(Partition.RUNNING))
    lost = _same(_BAD, _KEEP)
    if run != want:  # the new slot did not stay: the bootloader went back to this one
        print("fwota: %s was rolled back, %s runs" % (want, run))
    elif not healthy or lost:
        print("fwota: %s failed its health check (%s): reset, the bootloader rolls back"
              % (run, "config not loaded" if lost else "boot failed"))
        if lost:
            os.rename(_KEEP, _CFG)
            os.remove(_BAD)
        import machine

        machine.reset()  # not marked: PENDING_VERIFY becomes ABORTED at the next boot
    else:
        Partition.mark_app_valid_cancel_rollback()
        print("fwota: %s marked valid" % run)
    os.remove(_MARK)
    try:
        os.remove(_KEEP)
    except OSError:
        pass
