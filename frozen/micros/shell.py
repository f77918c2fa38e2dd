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

HOST = "0.0.0.0"  # the virtual board binds 127.0.0.1
_RX = bytearray(128)  # shared receive chunk; copied out before any await
_clients = []  # [writer, task, last_ticks, conf_mode, auth]
_AUTH = const(4)  # cl[_AUTH]: True once the key is proven; the nonce (bytes) until then (micros.auth)
NOTE = ""  # micros.guard: why safe mode, said to each new client (with auth off; system info says it too)


_pc = [-1, "", ""]  # conf.GEN the prompts were made at, prompt, conf-mode prompt


def prompt(cl):
    if _pc[0] != conf.GEN:
        d = conf.get("devfid")
        _pc[:] = [conf.GEN, d + " $ ", "[configure] " + d + " $ "]
    return _pc[2] if cl[3] else _pc[1]


def _render(res, as_json):
    if type(res) is str and not as_json:  # the common case first
        return res
    if as_json:
        import json

        return json.dumps(res)
    if res is None:
        return ""
    if isinstance(res, dict):
        return "\n".join("%s: %s" % (k, res[k]) for k in sorted(res))
    if isinstance(res, (list, tuple)):
        return "\n".join(str(x) for x in res)
    return str(res)


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
    """One command line -> reply text; None closes the connection."""
    as_json = line.endswith(">json")
    if as_json:
        line = line[:-5].rstrip()
    # a nonce pending (the key not yet proven): hello, version, exit and the auth exchange only
    if type(cl[_AUTH]) is bytes and line != "hello" and line != "version" and line != "exit":
        from micros import auth

        return auth.gate(cl, line)
    if " " in line:  # no built-in has an argument: straight to conf mode or a call
        return _extra("conf_line", cl, line) if cl[3] else _render(call.run(line), as_json)
    if not line:
        return ""
    if line == "exit":
        return None
    if line == "hello":
        return "hello:%s:%s" % (conf.get("devfid"), conf.get("hwuid"))
    if line == "version":
        return VERSION
    if line == "help":
        return _extra("help_text")
    if line in ("conf", "configure"):
        cl[3] = True
        return ""
    if line == "reboot":
        asyncio.create_task(_reboot())
        return "Reboot"
    if line == "webrepl":
        return _extra("webrepl_start")
    if cl[3]:
        return _extra("conf_line", cl, line)
    return _render(call.run(line), as_json)


async def _reply(w, text):
    w.write(text)
    await w.drain()


def _answer(cl, raw):
    """One received line -> reply text; None closes the connection."""
    if raw[:4] == b"ota ":  # as bytes: no str copies of a data line
        return _ota(cl, raw)
    try:
        line = raw.decode().strip()
    except UnicodeError:
        return "Error: the line is not UTF-8 text"
    try:
        return _exec(cl, line)
    except (call.CallError, conf.ConfError) as e:
        return "Error: %s" % e
    except Exception as e:  # an LM's own failure: report it, keep serving
        return "Error: %s: %s" % (type(e).__name__, e)


async def _quiet(r, ms):
    """True when nothing (no byte, no close) arrives on r's socket for ms: the
    bytes held without a newline are then one command, sent whole by one send()
    (the original micrOS v0.4 socketClient.py). Only partial chunks come here."""
    import select

    p = select.poll()
    p.register(r.s, select.POLLIN)
    for _ in range(ms // _STEP_MS):
        if p.poll(0):
            return False
        await asyncio.sleep_ms(_STEP_MS)
    return not p.poll(0)


async def _serve(r, w):
    cl = [w, asyncio.current_task(), time.ticks_ms(), False, None]
    if len(_clients) >= MAX_CLIENTS:
        await _reply(w, "Error: node busy (%d clients), try again later\nBye!\n" % MAX_CLIENTS)
        w.close()
        await w.wait_closed()
        return
    _clients.append(cl)
    acc = b""  # the start of a line not yet complete
    skip = False  # dropping the rest of a line that was too long
    framing = 0  # _LINES or _SENDS once known
    try:
        hi = NOTE
        if conf.get("auth") and conf.get("authkey") != "n/a":  # micros.auth is loaded only then
            from micros import auth

            hi = auth.greet(cl)  # nothing about the node before the key is proven
        await _reply(w, hi + prompt(cl))
        while True:
            if acc and framing != _LINES and not skip and await _quiet(r, _NEXT_MS if framing else _FIRST_MS):
                framing = _SENDS
                _RX[0] = 10  # the held chunk is one command: end it as a line
                n = 1
            else:
                n = await r.readinto(_RX)
                if not n:
                    break
                if not framing and b"\n" in _RX[:n]:
                    framing = _LINES  # from now on only a newline ends a command
            cl[2] = time.ticks_ms()
            data = acc + _RX[:n] if acc else _RX[:n]
            start = 0
            while True:
                i = data.find(b"\n", start)
                if i < 0:
                    break
                if skip:
                    skip = False
                else:
                    out = _answer(cl, data[start:i])
                    if out is None:
                        await _reply(w, "Bye!\n")
                        return
                    if type(out) is list:  # help: a chunk at a time, not one 1.6 KB string (at 38k, 32-bit, that failed)
                        for x in out:
                            w.write(x)
                            w.write("\n")
                        w.write(prompt(cl))
                    elif len(out) > _JOIN_MAX:  # sent as it is: a long reply is not copied to join the prompt
                        w.write(out)
                        w.write("\n" + prompt(cl))
                    else:
                        w.write(out + "\n" + prompt(cl) if out else prompt(cl))
                    await w.drain()  # inline: the hot path makes no extra coroutine
                start = i + 1
            acc = b"" if skip else data[start:]
            if len(acc) > _LINE_MAX:
                acc = b""
                skip = True
                await _reply(w, "Error: line too long (max %d bytes)\n%s" % (_LINE_MAX, prompt(cl)))
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        _clients.remove(cl)
        if "micros.ota" in sys.modules:  # a cut connection aborts its update
            _ota(cl, None)
        try:
            w.close()
            await w.wait_closed()
        except OSError:
            pass


async def _sweep():
    # Close clients idle for longer than soctout; no client blocks another.
    while True:
        await asyncio.sleep_ms(_SWEEP_MS)
        limit = conf.get("soctout") * 1000
        now = time.ticks_ms()
        for cl in _clients:
            if time.ticks_diff(now, cl[2]) > limit:
                cl[2] = now
                try:
                    cl[0].write("Bye! (idle for %d s)\n" % conf.get("soctout"))
                except OSError:
                    pass
                cl[1].cancel()


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
    port = port or conf.get("socport")
    srv = await asyncio.start_server(_serve, HOST, port, backlog=8)
    gc.collect()
    print("micrOS shell on %s:%d, %d B heap free" % (HOST, port, gc.mem_free()))
    asyncio.create_task(_sweep())
    return srv
