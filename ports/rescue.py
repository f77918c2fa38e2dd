# Filesystem rescue, imported by main.py only when the micrOS core cannot start
# (missing, broken, too big for the heap): not frozen, so it works without the core.
import os

if ".fwota" in os.listdir():  # the trial boot of a firmware update (micros.fwota) has no core:
    os.remove(".fwota")  # not marked valid, so a reset boots the old firmware (ESP-IDF rollback)
    import machine

    machine.reset()


def _appwd(f):
    # appwd out of node_config.json, read a character at a time: what is left of a heap
    # the core did not fit in may have no block for json.load's table of every setting
    # (~750 B). Strings are read whole (escapes too), so a value cannot pass for a key.
    import json

    depth = 0
    s = tok = key = None  # the string being read; the last one read; the key whose value comes next
    while True:
        c = f.read(1)
        if not c:
            raise ValueError("node_config.json cut short") if s else KeyError("appwd")
        if s:
            s += c if c != "\\" else c + f.read(1)
            if c == '"':
                tok = json.loads(s)
                s = None
                if key == "appwd":
                    return tok
        elif c == '"':
            s = c
        elif c == ":":
            key = tok if depth == 1 else None
        elif c == ",":
            key = None
        elif c in "{[":
            depth += 1
            key = None
        elif c in "}]":
            depth -= 1


# Rescue over WebREPL with the config's appwd: with no password (and no
# webrepl_cfg.py) webrepl.start() raises TypeError, over 9 characters
# ValueError (extmod/modwebrepl.c). No SystemExit: on ESP32 it soft-resets
# into this same path again (ports/esp32/main.c).
try:
    import webrepl

    with open("node_config.json") as f:
        pw = _appwd(f)
    webrepl.start(password=pw)
except (ImportError, OSError, KeyError, TypeError, ValueError) as e:  # ValueError: appwd not 4..9
    print("no WebREPL rescue:", repr(e))
