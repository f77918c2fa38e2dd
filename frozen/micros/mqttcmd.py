# A command that came in on <prefix>/<devfid>/cmd, run the way the shell runs a line; the
# reply goes out on .../reply. Loaded by micros.mqtt for each command and dropped after:
# none of it stays in RAM while the client is idle.
import json
from micropython import const
from micros import call, shell
from micros.mqtt import publish, changed

_CONF = const(3)  # micros.shell's connection record: in conf mode


def _unknown(cl, line):
    """The error for a call whose module or function does not exist, found by comparing text,
    or None. call.module/function would __import__/getattr the name first, and either interns
    it (py/qstr.c keeps every qstr for good): a name from the network must not get that far."""
    if cl[_CONF] or " " not in line:
        return None  # conf mode or a built-in: no name is looked up
    try:
        mod, func, _, _ = call.parse(line[:-5] if line.endswith(">json") else line)
    except call.CallError as e:
        return "Error: %s" % e
    import os
    import sys
    from micros import LMS

    m = sys.modules.get("micros.LM_" + mod) or sys.modules.get("LM_" + mod)
    if m is None and mod not in LMS.split():
        for d in sys.path:
            for ext in (".mpy", ".py"):
                try:
                    os.stat("%s/LM_%s%s" % (d or ".", mod, ext))
                    break
                except OSError:
                    pass
            else:
                continue
            break
        else:
            return "Error: unknown module %s (help lists them)" % mod
    if m is None:
        try:
            m = call.module(mod)  # it exists: its name is interned already (a frozen or file name)
        except call.CallError as e:
            return "Error: %s" % e
    if func not in m.__dict__:
        return "Error: %s has no function %s (help lists them)" % (mod, func)
    return None


async def run(body, at):
    """Run the cmd payload body[at:]; publish the reply."""
    cid = None
    js = False
    try:
        text = bytes(body[at:]).decode()
    except UnicodeError:
        text = "\x00"
    body = None
    if text[:1] == "{":
        js = True
        try:
            req = json.loads(text)
            cid = req.get("id")
            text = req["cmd"]
            if not isinstance(text, str):
                raise ValueError
        except (ValueError, KeyError, AttributeError, TypeError):
            await publish("reply", json.dumps({"id": cid, "reply": "Error: give {\"id\": .., \"cmd\": \"<line>\"}"}), qos=1)
            return
    # a shell client record (micros.shell): no writer, conf mode off, authenticated: the
    # broker's credentials are the gate for whoever may publish on cmd
    cl = [None, None, 0, False, True, None, b""]
    out = []
    for line in text.split("\n"):
        if line.strip():
            res = _unknown(cl, line.strip()) or shell._answer(cl, line.encode())  # the shell's own path
            if res is None:  # exit
                break
            out.append(res)
    res = "\n".join(out)
    out = None
    changed()  # HA reads a command's effect from the state
    if js:
        res = json.dumps({"id": cid, "reply": res})
    await publish("reply", res, qos=1)
