# micrOS socket shell: many clients at once over asyncio, one line a command.
import asyncio
import gc
import sys
import time
from micropython import const
from micros import VERSION, call, conf

_LINE_MAX = const(1200)  # longest accepted command line, bytes
_JOIN_MAX = const(128)  # a longer reply is written apart from the prompt (asyncio's Stream.write sends at once)
MAX_CLIENTS = 3  # the board's micros_board.CLIENTS, set by serve(); 3 fits every chip
_SWEEP_MS = const(1000)
# framing of a connection (docs/compatibility.md): unknown until its first
# newline or its first quiet chunk; then lines, or one command per send() as
# the original micrOS client sends them (no newline, then it waits for " $")
_LINES = const(1)
_SENDS = const(2)
_FIRST_MS = const(200)  # quiet that makes the first newline-less chunk a command
_NEXT_MS = const(20)  # the same once the client is known to send that way
_STEP_MS = const(10)
_OOM_WAIT_MS = const(100)  # a read that found no memory is tried again after this

HOST = "0.0.0.0"  # the virtual board binds 127.0.0.1
_RX = bytearray(128)  # shared receive chunk; copied out before any await
_clients = []  # one record per connection, read through the indices below
_W = const(0)  # its socket (non-blocking)
_TASK = const(1)  # the task serving it
_T = const(2)  # ticks_ms of its last complete command (or of its connect)
_CONF = const(3)  # in conf mode
_AUTH = const(4)  # True once the key is proven, the nonce (bytes) until then (micros.auth);
#                  only connections whose slot is not True give up their slot (shellx.admit)
_PEER = const(5)  # the peer's address as socket.accept() gave it (micros.auth, shellx)
_OUT = const(6)  # what write() could not send yet; drain() sends it
# A connection is its socket and this record, not an asyncio Stream: importing
# asyncio.stream costs ~900 B of heap for good (32-bit frozen), and each Stream
# object with its extra-info dict another ~100 B per client. write(), drain() and
# the reads below are extmod/asyncio/stream.py's Stream.write/drain/readinto.
NOTE = ""  # micros.guard: why safe mode, said to each new client (with auth off; system info says it too)


_pc = [-1, "", ""]  # conf.GEN the prompts were made at, prompt, conf-mode prompt


def prompt(cl):
    if _pc[0] != conf.GEN:
        d = conf.get("devfid")
        _pc[:] = [conf.GEN, d + " $ ", "[configure] " + d + " $ "]
    return _pc[2] if cl[_CONF] else _pc[1]


def _render(res, as_json):
    """A call's result -> its reply: text, or for a dict or list its lines as pieces."""
    if type(res) is str and not as_json:  # the common case first
        return res
    if as_json:
        import json

        return json.dumps(res)
    if res is None:
        return ""
    if isinstance(res, dict):
        return _joined(res, sorted(res))
    if isinstance(res, (list, tuple)):
        return _joined(None, res)
    return str(res)


def _joined(d, items):
    # "\n".join of the items' lines ("key: value" for dict d), made a line at a time
    sep = ""
    for x in items:
        yield "%s%s: %s" % (sep, x, d[x]) if d is not None else sep + str(x)
        sep = "\n"


def _extra(name, *args):
    # help, conf mode and webrepl live in micros.shellx, loaded when used and
    # dropped after, so the shell's cold paths cost no RAM between uses
    from micros import core, shellx

    try:
        return getattr(shellx, name)(*args)
    finally:
        core.drop("shellx")


def _ota(cl, line):
    # file updates: micros.ota, loaded for an update and dropped when none runs
    from micros import ota

    return ota.entry(cl, line, _AUTH, _reboot)


async def _reboot():
    from micros import core

    await asyncio.sleep_ms(100)
    core.reboot()


def _exec(cl, line):
    """One command line -> reply text, or a generator of its pieces (help, dump, a
    dict or list); None closes the connection."""
    as_json = line.endswith(">json")
    if as_json:
        line = line[:-5].rstrip()
    # a nonce pending (the key not yet proven): hello, version, exit and the auth exchange only
    if type(cl[_AUTH]) is bytes and line != "hello" and line != "version" and line != "exit":
        from micros import auth

        return auth.gate(cl, line)
    if " " in line:  # no built-in has an argument: straight to conf mode or a call
        return _extra("conf_line", cl, line, as_json) if cl[_CONF] else _render(call.run(line), as_json)
    if not line:
        return ""
    if line == "exit":
        return None
    if line == "hello":
        return "hello:%s:%s" % (conf.get("devfid"), conf.get("hwuid"))
    if line == "version":
        return VERSION
    if line == "help":
        return _extra("help_text")  # as_json or not: the same text, as before
    if line in ("conf", "configure"):
        cl[_CONF] = True
        return ""
    if line == "reboot":
        asyncio.create_task(_reboot())
        return "Reboot"
    if line == "webrepl":
        return _extra("webrepl_start")
    if cl[_CONF]:
        return _extra("conf_line", cl, line, as_json)
    return _render(call.run(line), as_json)


def write(cl, data):
    """Send data now if nothing waits before it, else queue it for drain()."""
    if not cl[_OUT]:
        n = cl[_W].write(data)
        if n == len(data):
            return
        if n:
            data = data[n:]
    cl[_OUT] += data


def drain(cl):  # async: a generator, as asyncio's Stream.drain
    if not cl[_OUT]:
        return (yield from asyncio.sleep_ms(0))
    mv = memoryview(cl[_OUT])
    off = 0
    while off < len(mv):
        yield asyncio.core._io_queue.queue_write(cl[_W])
        n = cl[_W].write(mv[off:])
        if n is not None:
            off += n
    cl[_OUT] = b""


def _read(s):  # async: wait until s is readable (the event loop's poller), then read a chunk into _RX
    yield asyncio.core._io_queue.queue_read(s)
    return s.readinto(_RX)


async def _reply(cl, text):
    write(cl, text)
    await drain(cl)


def _answer(cl, raw, pieces=False):
    """One received line -> the reply text; None closes the connection. With pieces,
    a long reply may come as a generator of its pieces, for _write_pieces();
    without (micros.mqtt's way in), it is always one string."""
    if raw[:4] == b"ota ":  # as bytes: no str copies of a data line
        return _ota(cl, raw)
    try:
        line = raw.decode().strip()
    except UnicodeError:
        return "Error: the line is not UTF-8 text"
    try:
        out = _exec(cl, line)
        return out if pieces or out is None or type(out) is str else "".join(out)
    except Exception as e:
        return _failed(e)


def _failed(e):
    """What a command's exception says to the client."""
    if isinstance(e, (call.CallError, conf.ConfError)):
        return "Error: %s" % e
    if isinstance(e, MemoryError):  # out of memory is an answer: collect, then say how much is free
        gc.collect()
        return "Error: out of memory (free %d B)" % gc.mem_free()
    return "Error: %s: %s" % (type(e).__name__, e)  # an LM's own failure: report it, keep serving


async def _write_pieces(cl, out):
    # A reply made a piece at a time (help, dump, a dict or list): each piece is sent
    # as it is made, so no reply needs one block of heap for all of it. On the wire
    # it is the same as the whole text: the pieces, then "\n" and the prompt (the
    # prompt alone for an empty reply). A failure half-way is said after what was sent.
    sent = False
    err = None
    while True:
        try:
            x = next(out)
        except StopIteration:
            break
        except Exception as e:
            err = _failed(e)
            break
        if x:
            write(cl, x)
            sent = True
            if cl[_OUT]:  # the socket took less than all: wait before making more
                await drain(cl)
    if err:
        write(cl, "\n" + err if sent else err)
        sent = True
    write(cl, "\n" + prompt(cl) if sent else prompt(cl))


async def _quiet(s, ms):
    """True when nothing (no byte, no close) arrives on socket s for ms: the
    bytes held without a newline are then one command, sent whole by one send()
    (the original micrOS v0.4 socketClient.py). Only partial chunks come here."""
    import select

    p = select.poll()
    p.register(s, select.POLLIN)
    for _ in range(ms // _STEP_MS):
        if p.poll(0):
            return False
        await asyncio.sleep_ms(_STEP_MS)
    return not p.poll(0)


async def _serve(s, peer):
    cl = None
    acc = b""  # the start of a line not yet complete
    skip = False  # dropping the rest of a line that was too long (or lost to memory)
    framing = 0  # _LINES or _SENDS once known
    try:
        cl = [s, asyncio.current_task(), time.ticks_ms(), False, False, peer, b""]
        # nearly full: room is made in micros.shellx (a cold path, loaded only then)
        if len(_clients) >= MAX_CLIENTS - 1 and not _extra("admit", cl, _clients, MAX_CLIENTS):
            busy = cl
            cl = None  # never served: nothing of it to clean up below
            await _reply(busy, "Error: node busy (%d clients), try again later\nBye!\n" % MAX_CLIENTS)
            return
        _clients.append(cl)
        hi = NOTE
        if conf.get("auth") and conf.get("authkey") != "n/a":  # micros.auth is loaded only then
            from micros import auth

            hi = auth.greet(cl)  # nothing about the node before the key is proven
        await _reply(cl, hi + prompt(cl))
        while True:
            n = 0
            try:
                if acc and framing != _LINES and not skip and await _quiet(s, _NEXT_MS if framing else _FIRST_MS):
                    framing = _SENDS
                    _RX[0] = 10  # the held chunk is one command: end it as a line
                    n = 1
                else:
                    n = await _read(s)
                    if not n:
                        break
                    if not framing and b"\n" in _RX[:n]:
                        framing = _LINES  # from now on only a newline ends a command
                data = acc + _RX[:n] if acc else _RX[:n]
                start = 0
                while True:
                    i = data.find(b"\n", start)
                    if i < 0:
                        break
                    if skip:
                        skip = False
                    else:
                        out = _answer(cl, data[start:i], True)
                        cl[_T] = time.ticks_ms()  # idle counts from the last complete command
                        if out is None:
                            await _reply(cl, "Bye!\n")
                            return
                        if type(out) is not str:  # pieces: help, dump, a dict or list
                            await _write_pieces(cl, out)
                        elif len(out) > _JOIN_MAX:  # sent as it is: a long reply is not copied to join the prompt
                            write(cl, out)
                            write(cl, "\n" + prompt(cl))
                        else:
                            write(cl, out + "\n" + prompt(cl) if out else prompt(cl))
                        if cl[_OUT]:  # not all sent at once:
                            await drain(cl)  # the hot path makes no coroutine otherwise
                    start = i + 1
                acc = b"" if skip else data[start:]
                if len(acc) > _LINE_MAX:
                    acc = b""
                    skip = True
                    await _reply(cl, "Error: line too long (max %d bytes)\n%s" % (_LINE_MAX, prompt(cl)))
            except MemoryError:  # reading, joining or replying: what was buffered is lost
                if not n:  # before anything was read: nothing to answer yet, let others free memory
                    gc.collect()
                    await asyncio.sleep_ms(_OOM_WAIT_MS)
                    continue
                skip = _RX[n - 1] != 10
                acc = b""
                cl[_OUT] = b""  # a reply not yet sent is dropped
                try:
                    gc.collect()
                    out = "Error: out of memory (free %d B)\n" % gc.mem_free()
                except MemoryError:  # not even that line: a constant, sent as it is
                    out = b"Error: out of memory\n"
                write(cl, out)  # nothing queued: straight to the socket, nothing allocated
                write(cl, prompt(cl))
                if cl[_OUT]:
                    await drain(cl)
    except (OSError, asyncio.CancelledError):
        pass
    except MemoryError:  # no room even to start: one line, then the connection closes
        try:
            s.write(b"Error: out of memory\n")  # best effort, never waits
        except (OSError, MemoryError):
            pass
    finally:
        if cl in _clients:
            _clients.remove(cl)
        if "micros.ota" in sys.modules:  # a cut connection aborts its update
            _ota(cl, None)
        try:
            s.close()
        except OSError:
            pass


async def accept(s):  # (a name the VM has interned already: no qstr of its own)
    # extmod/asyncio/stream.py Server._serve with two changes: a connection is its
    # socket and record (no Stream), and running out of memory while taking a
    # connection closes that connection, and the loop goes on (upstream, the server
    # task would die and the node never accept again).
    while True:
        s2 = addr = None  # nothing of the last connection is kept while waiting for the next
        try:
            yield asyncio.core._io_queue.queue_read(s)
            s2, addr = s.accept()
            s2.setblocking(False)
            asyncio.create_task(_serve(s2, addr))
        except OSError:  # a failed accept
            pass
        except MemoryError:
            if s2:
                s2.close()
            gc.collect()


async def _sweep():
    # Close clients idle for longer than soctout; no client blocks another.
    while True:
        await asyncio.sleep_ms(_SWEEP_MS)
        try:
            limit = conf.get("soctout") * 1000
            now = time.ticks_ms()
            for cl in _clients:
                if time.ticks_diff(now, cl[_T]) > limit:
                    cl[_T] = now
                    try:  # best effort, never waits
                        cl[_W].write("Bye! (idle for %d s)\n" % conf.get("soctout"))
                    except OSError:
                        pass
                    cl[_TASK].cancel()
            cl = None  # the last client's record (its socket, task and frame) is not kept here
        except MemoryError:
            gc.collect()


async def serve(port=None):
    global MAX_CLIENTS

    # as many clients as the chip's TCP/IP stack leaves room for (micros_board.py,
    # dropped again: its module costs RAM); stock firmware without it keeps 3
    try:
        import micros_board

        MAX_CLIENTS = micros_board.CLIENTS
        del sys.modules["micros_board"]
    except ImportError:
        pass
    import socket

    port = port or conf.get("socport")
    # as asyncio.start_server binds (extmod/asyncio/stream.py), served by accept()
    s = socket.socket()
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(socket.getaddrinfo(HOST, port)[0][-1])
        s.listen(8)
    except OSError:  # the port is taken: micros.guard falls back
        s.close()
        raise
    asyncio.create_task(accept(s))
    gc.collect()
    print("micrOS shell on %s:%d, %d B heap free" % (HOST, port, gc.mem_free()))
    asyncio.create_task(_sweep())
    return s
