# What keeps the shell reachable whatever the config says: safe mode, the
# fallback when socport cannot be bound, and the check of socport when it is
# set. Imported only for these, and dropped after. (micros.core keeps the
# boot-loop count in the RTC memory.)
from micropython import const

DEFAULT_PORT = const(9008)  # socport's default (conf.SCHEMA)
_RETRY_MAX_S = const(60)


def check(key, val):
    """conf hook for socport: refuse a port the node cannot listen on."""
    import socket
    import sys
    from micros import conf

    if val == 8266:
        raise conf.ConfError("socport 8266 is WebREPL's port; pick another")
    if sys.implementation.name != "micropython" or val == conf.get("socport"):
        return  # the host cannot know the node's ports; the shell listens on socport now
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio.start_server binds
        s.bind(socket.getaddrinfo("0.0.0.0", val)[0][-1])
    except OSError as e:
        raise conf.ConfError("socport %d is in use on the node (%s); pick another" % (val, e))
    finally:
        s.close()


def note(text):
    """Say what the boot worked around: in the log, system info and to each client."""
    from micros import core, shell

    core.WHY = text
    shell.NOTE = "micrOS: %s\n" % text
    print("micrOS:", text)


def safe(why):
    """Safe mode: no boot hook, scheduler or Load Modules from the filesystem."""
    from micros import call, core

    core.SAFE = True
    call.USER = False
    note("safe mode: " + why)


async def fallback(shell, err):
    """socport is taken: start the shell on the default port, else enter safe
    mode and retry both with backoff until one binds. Never raises OSError."""
    import asyncio
    from micros import conf

    port = conf.get("socport")
    print("micrOS: shell port %d: %s" % (port, err))
    wait = 1
    while True:
        if port != DEFAULT_PORT:
            try:
                await shell.serve(DEFAULT_PORT)
                note("shell port %d in use: serving on %d" % (port, DEFAULT_PORT))
                return
            except OSError as e:
                print("micrOS: shell port %d: %s" % (DEFAULT_PORT, e))
        if wait == 1:
            safe("shell ports in use, retrying")
        await asyncio.sleep(wait)
        wait = min(wait * 2, _RETRY_MAX_S)
        try:
            await shell.serve(port)
            return
        except OSError:
            pass
