# File updates over the shell, all or nothing. micros.shell loads this module for
# an update (entry) and it drops itself after; boot.py calls recover() when .ota/ exists.
#   ota begin                  -> "ota ready <chunk>"  (one update at a time)
#   ota file NAME SIZE SHA256  -> "ok"   staged as .ota/NAME.part
#   ota data BASE64            -> "ok"   at most <chunk> bytes a line
#   ota end                    -> "ok"   sha256 checked, .part renamed to .ota/NAME
#   ota set KEY VALUE          -> "ok"   checked as conf.set checks it, staged in .ota/.set
#   ota commit N S             -> "ota committed N"  (N files, S settings) then a restart
#   ota abort                  -> "ota aborted"
#   ota sum NAME               -> sha256 of NAME as the node has it
# commit writes .ota/.commit (the names, one a line) before it moves a file, so a
# reset while moving is finished at boot; without .commit, boot discards .ota/.
# A cut connection aborts: the node keeps running its previous files.
import os
import sys
from binascii import a2b_base64, hexlify, unhexlify
from hashlib import sha256
from micropython import const

CHUNK = const(512)  # file bytes a data line carries: 684 in base64, under the shell's line max
_NAME_MAX = const(48)
_DIR = ".ota"
_MARK = ".ota/.commit"
_SETS = ".ota/.set"
_st = [None, None, None, 0, None, None]  # the update: owner, file, hash, bytes left, name, digest
_OWNER = const(0)
_F = const(1)
_H = const(2)
_LEFT = const(3)
_NAME = const(4)
_SUM = const(5)


class OtaError(Exception):
    pass


def _clear():
    try:
        names = os.listdir(_DIR)
    except OSError:
        return
    for n in names:
        if n != ".commit":
            os.remove(_DIR + "/" + n)
    try:
        os.remove(_MARK)  # last: until it is gone, a reset finishes the commit
    except OSError:
        pass
    os.rmdir(_DIR)


def _apply():
    # move every name the marker lists; a name moved before a reset is skipped
    with open(_MARK) as m:
        for line in m:
            n = line.strip()
            try:
                os.rename(_DIR + "/" + n, n)
            except OSError:
                pass
            if n.endswith(".mpy"):  # the import system finds NAME.py before NAME.mpy
                try:
                    os.remove(n[:-4] + ".py")
                except OSError:
                    pass
    try:
        f = open(_SETS)
    except OSError:
        f = None
    if f:
        from micros import conf

        with f:
            for line in f:  # applied again after a reset: the same values, the same result
                key, _, val = line[:-1].partition(" ")
                conf.set(key, val)
    _clear()


def recover():
    try:
        os.stat(_MARK)
    except OSError:
        _clear()  # a transfer that never committed: the old files stay
        return "ota: discarded an unfinished update"
    _apply()
    return "ota: finished an interrupted commit"


def entry(cl, line, auth, reboot):
    # micros.shell's one way in (line None: cl's connection is gone). Only a client
    # that proved the shell key (micros.auth) may update: with auth off, none may.
    if line is None:
        if _st[_OWNER] is cl:
            _abort()  # the old files stay
        out = ""
    elif cl[auth] is not True:
        out = "Error: ota needs an authenticated shell: set authkey (docs/security.md)"
    elif line[4:7] == b"fw ":
        out = _fw(cl, line)
    else:
        try:
            out = run(cl, line)
        except OtaError as e:
            out = "Error: %s" % e
    fw = sys.modules.get("micros.fwota")
    if fw and line is None:
        fw.cut(cl)
    if fw and not fw.busy():
        from micros import call

        call.unload("micros.fwota")
        fw = None
    if _st[_OWNER] is None and fw is None:
        from micros import call

        call.unload("micros.ota")
    if out.startswith(("ota committed", "fw switched")):
        import asyncio

        asyncio.create_task(reboot())
        out += "; restarting"
    return out


def _fw(cl, line):
    # firmware updates: micros.fwota, frozen where MicroPython has esp32.Partition
    try:
        from micros import fwota
    except ImportError:
        return "Error: MicroPython has no firmware OTA on %s: update over USB (invoke update)" % sys.platform
    try:
        return fwota.run(cl, line)
    except fwota.FwError as e:
        return "Error: %s" % e


def _abort():
    f = _st[_F]
    if f:
        f.close()
    _st[:] = [None, None, None, 0, None, None]
    _clear()


def _name(n):
    if not 0 < len(n) <= _NAME_MAX or n[0] == "." or "/" in n or n.endswith(".part"):
        raise OtaError("bad file name")
    return n


def run(cl, line):
    """One `ota ...` line (bytes, as received) of client cl -> the reply; OtaError ends
    the update. A data line is decoded from a memoryview: no copy of its text."""
    if line[4:9] == b"data ":
        cmd, arg = "data", memoryview(line)[9:]
    else:
        cmd, _, arg = line[4:].decode().strip().partition(" ")
    if cmd == "sum":
        return _sum(_name(arg))
    if _st[_OWNER] is not None and _st[_OWNER] is not cl:
        raise OtaError("another client is updating this node")
    try:
        return _step(cl, cmd, arg)
    except OtaError:
        _abort()
        raise
    except (OSError, ValueError) as e:  # flash full, bad base64 or number
        _abort()
        raise OtaError("update aborted: %r" % e)


def _step(cl, cmd, arg):
    st = _st
    if cmd == "data":
        if st[_F] is None:
            raise OtaError("no file open")
        b = a2b_base64(arg)
        if len(b) > st[_LEFT]:
            raise OtaError("more data than announced")
        st[_F].write(b)
        st[_H].update(b)
        st[_LEFT] -= len(b)
        return "ok"
    if cmd == "begin":
        _clear()  # what an earlier update left
        os.mkdir(_DIR)
        st[_OWNER] = cl
        return "ota ready %d" % CHUNK
    if st[_OWNER] is None:
        raise OtaError("no update: send ota begin first")
    if cmd == "file":
        name, size, digest = arg.split(" ")
        if st[_F] is not None:
            raise OtaError("a file is still open")
        st[_NAME] = _name(name)
        st[_LEFT] = int(size)
        st[_SUM] = unhexlify(digest)
        st[_H] = sha256()
        st[_F] = open(_DIR + "/" + name + ".part", "wb")
        return "ok"
    if cmd == "end":
        f = st[_F]
        if f is None:
            raise OtaError("no file open")
        f.close()
        st[_F] = None
        if st[_LEFT]:
            raise OtaError("%s: %d bytes missing" % (st[_NAME], st[_LEFT]))
        if st[_H].digest() != st[_SUM]:
            raise OtaError("%s: sha256 mismatch" % st[_NAME])
        os.rename(_DIR + "/" + st[_NAME] + ".part", _DIR + "/" + st[_NAME])
        return "ok"
    if cmd == "set":
        key, _, val = arg.partition(" ")
        _valid(key, val)
        with open(_SETS, "a") as f:
            f.write(key + " " + val + "\n")
        return "ok"
    if cmd == "commit":
        if st[_F] is not None:
            raise OtaError("a file is still open")
        nf, _, ns = arg.partition(" ")
        names = [n for n in os.listdir(_DIR) if n[0] != "." and not n.endswith(".part")]
        if len(names) != int(nf):
            raise OtaError("%d files arrived, not %s" % (len(names), nf))
        if _count(_SETS) != int(ns or 0):
            raise OtaError("%d settings arrived, not %s" % (_count(_SETS), ns))
        with open(_MARK, "w") as m:
            for n in names:
                m.write(n + "\n")
        _apply()
        st[:] = [None, None, None, 0, None, None]
        return "ota committed %d" % len(names)
    if cmd == "abort":
        _abort()
        return "ota aborted"
    raise OtaError("unknown ota command")


def _valid(key, val):
    # what conf.set checks, without saving
    from micros import conf

    try:
        from micros import call, confw

        call.unload("micros.confw")
        row = conf.spec(key)
        if row[2] & conf.SYSTEM:
            raise OtaError("%s is written by the node itself" % key)
        confw.check(key, confw._check(row, confw.parse(key, val)))
    except conf.ConfError as e:
        raise OtaError(str(e))


def _count(path):
    n = 0
    try:
        with open(path) as f:
            for _ in f:
                n += 1
    except OSError:
        pass
    return n


def _sum(name):
    h = sha256()
    buf = bytearray(CHUNK)  # the file is read in place
    mv = memoryview(buf)
    try:
        with open(name, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(mv[:n])
    except OSError:
        return "none"
    return hexlify(h.digest()).decode()
