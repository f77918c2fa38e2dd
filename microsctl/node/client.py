"""Client for the micrOS socket shell: one-shot commands, or an interactive session.

A node with auth on greets with "Auth: hmac-sha256 <nonce>"; Shell answers with
"auth <HMAC-SHA256(authkey, nonce)>", the key taken from the secrets layer
(MICROS_AUTHKEY or the secrets file, microsctl.flashing.profiles), never asked
for and never printed (docs/security.md)."""
import hashlib
import hmac
import re
import select
import signal
import socket
import threading

from microsctl import MicrosError
from microsctl.node.framing import ERROR, PROMPT, Replies, is_error  # noqa: F401 (PROMPT, is_error: for importers)
CHALLENGE = re.compile(r"^Auth: hmac-sha256 ([0-9a-f]{32})$", re.M)


class AuthError(MicrosError):
    """The node's shell refused us: no key here, a wrong key, or a lockout after failures."""


def answer(key, nonce):
    """The response to a node's challenge: hex HMAC-SHA256 of the nonce's text under the key."""
    return hmac.new(key.encode(), nonce.encode(), hashlib.sha256).hexdigest()


class Shell:
    """key: the shell key; None looks it up in the secrets layer when the node asks for one
    (with profile, config_profiles/<profile>.secrets.json too: the key the node was flashed with)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0, key=None, profile=None):
        self.addr = (host, port)
        self.profile = profile
        try:
            self.sock = socket.create_connection(self.addr, timeout)
        except OSError as err:
            raise MicrosError(f"no micrOS shell at {host}:{port} ({err.strerror or err}); is the node up?") from err
        self.sock.settimeout(timeout)
        self.closed = False
        self.rx = Replies()
        self.authenticated = False
        self.banner = self._read_reply()  # what the node says before its first prompt (safe mode)
        m = CHALLENGE.search(self.banner)
        if m:
            try:
                self._auth(m.group(1), key)
            except MicrosError:
                self.close()
                raise

    def _auth(self, nonce, key):
        host, port = self.addr
        if key is None:
            from microsctl.flashing import profiles

            key, where = profiles.shell_key(self.profile)
        else:
            where = "secrets.json"
        if not key:
            raise AuthError(f"the node at {host}:{port} asks for its shell key: set MICROS_AUTHKEY "
                            f"or add authkey to {where} (the key it was flashed with)")
        reply = self.cmd("auth " + answer(key, nonce))
        if reply == "Authenticated":
            self.authenticated = True
            return
        if "locked" in reply:
            raise AuthError(f"the node at {host}:{port} refuses to authenticate for now "
                            f"({reply.splitlines()[0][len(ERROR):]}); wait and retry")
        raise AuthError(f"the node at {host}:{port} refused the shell key: set MICROS_AUTHKEY or authkey "
                        f"in {where} to the key the node was flashed with")

    def gone(self):
        """The one line for a connection the node closed or reset."""
        host, port = self.addr
        again = f"invoke shell --port {port}" + (f" --host {host}" if host != "127.0.0.1" else "")
        return MicrosError(f"the node at {host}:{port} closed the connection (it rebooted, crashed or was stopped); "
                           f"reconnect with: {again}")

    @property
    def prompt(self):
        """The node's last prompt, which closed the last reply."""
        return self.rx.prompt

    @property
    def pending(self):
        """Received while nobody asked (interactive idle time)."""
        return self.rx.buf

    @pending.setter
    def pending(self, data):
        self.rx.buf = data

    def _read_reply(self):
        while (reply := self.rx.reply()) is None:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout as err:
                raise MicrosError(f"the node at {self.addr[0]}:{self.addr[1]} stopped answering") from err
            except OSError:  # reset by the node
                chunk = b""
            if not chunk:
                self.closed = True
                return self.rx.rest()
            self.rx.feed(chunk)
        return reply

    def cmd(self, line):
        """Send one command line; the reply without the prompt and last newline."""
        if self.closed:
            raise self.gone()
        try:
            self.sock.sendall(line.encode() + b"\n")
        except OSError as err:
            self.closed = True
            raise self.gone() from err
        return self._read_reply().rstrip("\n")

    def send_raw(self, data):
        self.sock.sendall(data)
        return self._read_reply().rstrip("\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def one_shot(port, commands, host="127.0.0.1", profile=None):
    """Run commands in order, printing replies; returns 1 if any reply is an error."""
    failed = 0
    with Shell(port, host, profile=profile) as sh:
        for line in commands:
            reply = sh.cmd(line)
            if reply:
                print(reply)
            failed |= is_error(reply)
            if sh.closed:
                break
    return 1 if failed else 0


class _Watch:
    """While input() waits for the user, watch the connection: when the node closes or resets
    it, interrupt input() at once (SIGINT to the main thread, so readline restores the
    terminal) rather than at the next command. Where that cannot be done (no pthread_kill,
    not the main thread) the next command finds out.

    The signal is sent again every 0.2 s until input() has given up: one that lands just
    before readline waits in select() only sets CPython's flag (Modules/readline.c checks
    it on EINTR), and is acted on with the next one. SIGINT is blocked in the watcher
    thread, so the user's Ctrl-C always reaches the main thread."""

    def __init__(self, sh):
        self.sh = sh
        self.gone = False
        self.usable = hasattr(signal, "pthread_kill") and threading.current_thread() is threading.main_thread()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.usable and not self.sh.closed:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(threading.get_ident(),), daemon=True)
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])  # inherited by the thread
            try:
                self._thread.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        with self._lock:  # after this, no signal is sent
            self._stop.set()
        if self._thread:
            self._thread.join()
            self._thread = None

    def _run(self, main):
        sock = self.sh.sock
        while not self._stop.is_set():
            try:
                if not select.select([sock], [], [], 0.1)[0]:
                    continue
                data = sock.recv(65536)
            except OSError:  # reset
                data = b""
            if data:  # said unasked (e.g. "Bye! (idle for 300 s)"): shown with the next reply
                self.sh.pending += data
                continue
            self.gone = self.sh.closed = True
            while True:
                with self._lock:
                    if self._stop.is_set():
                        return
                    signal.pthread_kill(main, signal.SIGINT)
                self._stop.wait(0.2)


def interactive(port, host="127.0.0.1", history=None, profile=None):
    """A session until 'exit' or Ctrl-D (returns 0) or Ctrl-C (returns 130, the shell's
    128 + SIGINT); a node that goes away is a MicrosError. Lines typed are kept in
    history (microsctl.node.history) when the input is a terminal."""
    import sys

    from microsctl.node.history import History

    hist = history or (History() if sys.stdin.isatty() else None)
    try:
        with Shell(port, host, profile=profile) as sh:
            print(f"Connected to {host}:{port}; 'help' lists commands, 'exit' or Ctrl-D leaves (Ctrl-C too).")
            return _session(sh, hist)
    finally:
        note = hist.save() if hist else None
        if note:
            print(f"[shell] {note}", file=sys.stderr)


def _session(sh, hist):
    watch = _Watch(sh)
    interrupted = []

    def once(signum, frame):  # the first SIGINT ends the session; more (repeats) change nothing
        if not interrupted:
            interrupted.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, once) if watch.usable else None
    try:
        while True:
            try:
                with watch:
                    line = input(sh.prompt)
            except EOFError:
                line = "exit"
                print()
            else:
                if hist:
                    hist.add(line)
            reply = sh.cmd(line)
            if reply:
                print(reply)
            if sh.closed:
                if line.strip() == "exit":
                    return 0
                raise sh.gone()
    except KeyboardInterrupt:
        watch.stop()
        print()
        if watch.gone:
            if sh.pending:
                print(sh.pending.decode(errors="replace").rstrip("\n"))
            raise sh.gone() from None
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
