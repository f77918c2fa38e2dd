# The shell's cold paths: help, conf mode, webrepl. micros.shell imports this
# module when one of them is used and drops it again afterwards.
import gc
import sys
import time
from micropython import const
from micros import call, conf

# micros.shell's connection record
_W = const(0)
_TASK = const(1)
_T = const(2)
_AUTH = const(4)
_PEER = const(5)


def _ip(c):
    # the peer's address without its port: a (host, port) tuple on the boards,
    # a raw sockaddr_in on the unix port (bytes 4..8: the IPv4 address)
    a = c[_PEER]
    return a[0] if isinstance(a, tuple) else bytes(a[4:8])

_HELP = """[micrOS] built-in commands:
  hello - hello:<devfid>:<hwuid>
  version - micrOS version
  help - this text
  exit - close this connection
  auth <hmac> - answer the node's Auth: challenge (the host tools do it)
  reboot - restart the node
  webrepl - start WebREPL (boards only)
  ota ... - file updates (invoke ota; docs/updates.md)
[CONF] configure mode:
  configure | conf - enter conf mode
  dump [filter] - list the settings
  <key> - read one setting
  <key> <value> | <key>:<value> - write one setting
  noconfigure | noconf - leave conf mode
[LMS] <module> <function> [args] | <module> <function>(args) [>json]:"""


def help_text():
    """The help text, a piece at a time: the built-ins, then a piece a Load Module
    (micros.shell writes each as it is made, never one string of it all)."""
    yield _HELP
    for name in _lm_names():
        before = set(sys.modules)
        try:
            m = call.module(name)
            if hasattr(m, "help"):  # its own list: names in source order, forwarded ones too
                h = m.help()  # ours: one string of lines; the original's: a tuple
                funcs = [x.split(" ", 1)[0] for x in (h.split("\n") if isinstance(h, str) else h)]
            else:
                funcs = sorted(
                    k for k in dir(m) if k[0] != "_" and callable(getattr(m, k)) and not isinstance(getattr(m, k), type)
                )
            out = "\n  " + name + "".join("\n    " + k for k in funcs)
        except call.CallError:  # listed in micros.LMS, not frozen on this board
            out = None
        except Exception as e:  # a broken user module must not break help
            out = "\n  %s (cannot load: %s)" % (name, e)
        m = h = funcs = None
        call.forget(before)  # listing must not keep modules in RAM
        before = None
        gc.collect()  # its bytes free before the next module loads, in the same place
        if out:
            yield out


def _lm_names():
    # micros.LMS's names, then those of LM_ files on the filesystem, each once
    from micros import LMS

    at = 0
    while at < len(LMS):
        end = LMS.find(" ", at)
        end = len(LMS) if end < 0 else end
        yield LMS[at:end]
        at = end + 1
    import os

    mine = []
    for f in os.listdir():
        if f.startswith("LM_") and (f.endswith(".py") or f.endswith(".mpy")):
            n = f[3 : f.rfind(".")]
            if n not in mine and (" %s " % n) not in (" %s " % LMS):
                mine.append(n)
                yield n


def conf_line(cl, line, as_json=False):
    """One conf-mode line (noconf, dump, a key to read or write) -> the reply: text,
    a generator of its lines (dump), or with as_json (`>json`) its JSON."""
    if not as_json and (line == "dump" or line.startswith("dump ")):
        return _dump(line[5:].strip())
    out = _conf(cl, line, as_json)
    if as_json:
        import json

        return json.dumps(out)
    return out


def _dump(flt):
    # "key: value" lines of the settings whose key holds flt, secrets masked, made a
    # line at a time from conf.SCHEMA: no list of keys, no string of them all
    from micros import confw

    call.unload("micros.confw")  # kept by this generator while it runs, by nothing after
    sep = ""
    at = 1  # the start of a line of SCHEMA (it starts with a newline): its key, up to a space
    while at < len(conf.SCHEMA):
        k = conf.SCHEMA[at : conf.SCHEMA.find(" ", at)]
        if flt in k:
            yield "%s%s: %s" % (sep, k, confw.shown(k))
            sep = "\n"
        at = conf.SCHEMA.find("\n", at) + 1


def _conf(cl, line, as_json):
    if line in ("noconf", "noconfigure"):
        cl[3] = False
        return ""
    from micros import confw  # what conf mode shows and writes

    call.unload("micros.confw")  # kept by this call while it runs, by nothing after
    if line == "dump" or line.startswith("dump "):  # as_json: one object, secrets masked as in the text
        flt = line[5:].strip()
        return {k: confw.shown(k) for k in confw.keys() if flt in k}
    key, sep, val = line.partition(" ")
    colon = key.find(":")
    if colon > 0:
        key, val, sep = line[:colon], line[colon + 1 :], ":"
    if not sep:
        return confw.shown(key) if as_json else str(confw.shown(key))
    if key in ("auth", "authkey") and cl[4] is not True:  # cl[4]: micros.shell's auth state
        raise conf.ConfError("%s can be changed only in an authenticated session (or by invoke provision)" % key)
    out = "Saved (takes effect after reboot)" if confw.set(key, val) else "Saved"
    if key in ("cron", "timirq") and conf.get("cron") and not conf.get("timirq"):
        out += "; note: cron runs only with timirq True"
    return out


def webrepl_start():
    try:
        import webrepl
    except ImportError:
        return "Error: webrepl is not available on this board"
    pwd = conf.get("appwd")
    if not 4 <= len(pwd) <= 9:
        return "Error: WebREPL needs appwd of 4..9 characters; set it in conf mode"
    webrepl.start(password=pwd)
    return "WebREPL started on port 8266; log in with the appwd password"




def admit(cl, clients, most):
    """Make room for connection cl among clients (at most `most`); False when there is
    none to make. A full node, or an address at its cap (all slots but one), gives up
    its longest-idle connection that has not authenticated (idle: since its last
    complete command)."""
    ip = _ip(cl)
    mine = 0
    for c in clients:
        mine += _ip(c) == ip
    per_ip = mine >= most - 1  # one address never holds every slot
    if len(clients) < most and not per_ip:
        return True
    old = None
    for c in clients:
        if c[_AUTH] is not True and (not per_ip or _ip(c) == ip):
            if old is None or time.ticks_diff(old[_T], c[_T]) > 0:
                old = c
    if old is None:
        return False
    clients.remove(old)
    try:
        old[_W].write(b"Bye! (slot given to a new client)\n")  # best effort, never waits
    except OSError:
        pass
    old[_TASK].cancel()
    return True
