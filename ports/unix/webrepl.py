# Virtual board: webrepl as the ESP ports freeze it (micropython-lib's
# micropython/net/webrepl/webrepl.py, required by bundle-networking in
# ports/esp8266/boards/manifest.py and ports/esp32/boards/manifest.py, over
# extmod/modwebrepl.c). start() takes the password as they do; the server is a
# TCP listener on 127.0.0.1 (port MICROS_SIM_WEBREPL, else the one asked for)
# that asks for the password as modwebrepl.c does, without websocket framing.
# The plain sim (no chip) has no webrepl, as the unix port.
import chip

if not chip.NAME:
    raise ImportError("no module named 'webrepl'")
import os
import socket

listen_s = None
PASS = None


def _password(pw):
    # extmod/modwebrepl.c webrepl_set_password(): mp_obj_str_get_data() of None
    # raises TypeError; more than sizeof(webrepl_passwd) - 1 = 9 bytes, ValueError
    if not isinstance(pw, str):
        raise TypeError("can't convert %s to str" % type(pw).__name__)
    if len(pw) > 9:
        raise ValueError
    return pw


def stop():
    global listen_s
    if listen_s:
        listen_s.close()
        listen_s = None


def start(port=8266, password=None, accept_handler=None):
    global listen_s, PASS
    stop()
    pw = password
    if pw is None:  # webrepl.py: the password of webrepl_cfg.py, if there is one
        try:
            import webrepl_cfg

            pw = webrepl_cfg.PASS
        except Exception:  # webrepl.py has a bare except here
            print("WebREPL is not configured, run 'import webrepl_setup'")
    PASS = _password(pw)
    port = int(os.getenv("MICROS_SIM_WEBREPL") or port)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    s.listen(1)
    listen_s = s
    print("WebREPL server started on http://127.0.0.1:%d/" % port)
    print("Started webrepl in %s mode" % ("normal" if password is None else "manual override"))


def serve():
    """What a board does once main.py has returned: its REPL idles, WebREPL answers."""
    while listen_s:
        cl = listen_s.accept()[0]
        cl.send(b"Password: ")
        line = b""
        while not line.endswith(b"\n"):
            c = cl.recv(1)
            if not c:
                break
            line += c
        ok = line.strip() == PASS.encode()
        cl.send(b"\r\nWebREPL connected\r\n>>> " if ok else b"\r\nAccess denied\r\n")
        cl.close()
