"""Client for the micrOS socket shell."""
import re
import socket

from microsctl import MicrosError

# The prompt closes every reply: "<devfid> $ " or "[configure] <devfid> $ ".
PROMPT = re.compile(r"(?:\A|\n)((?:\[configure\] )?[^\n]* \$ )\Z")
ERROR = "Error: "


class Shell:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.addr = (host, port)
        try:
            self.sock = socket.create_connection(self.addr, timeout)
        except OSError as err:
            raise MicrosError(f"no micrOS shell at {host}:{port} ({err.strerror or err}); is the node up?") from err
        self.sock.settimeout(timeout)
        self.prompt = ""
        self.closed = False
        self._read_reply()

    def _read_reply(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout as err:
                raise MicrosError(f"the node at {self.addr[0]}:{self.addr[1]} stopped answering") from err
            if not chunk:
                self.closed = True
                return buf.decode(errors="replace")
            buf += chunk
            text = buf.decode(errors="replace")
            m = PROMPT.search(text)
            if m:
                self.prompt = m.group(1)
                return text[: m.start(1)]

    def cmd(self, line):
        """Send one command line; the reply without the prompt and last newline."""
        if self.closed:
            raise MicrosError("the node closed the connection")
        self.sock.sendall(line.encode() + b"\n")
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


def is_error(reply):
    return any(line.startswith(ERROR) for line in reply.splitlines())


def one_shot(port, commands, host="127.0.0.1"):
    """Run commands in order, printing replies; returns 1 if any reply is an error."""
    failed = 0
    with Shell(port, host) as sh:
        for line in commands:
            reply = sh.cmd(line)
            if reply:
                print(reply)
            failed |= is_error(reply)
            if sh.closed:
                break
    return 1 if failed else 0


def interactive(port, host="127.0.0.1"):
    try:
        import readline  # noqa: F401  (history and line editing for input())
    except ImportError:
        pass
    with Shell(port, host) as sh:
        print(f"Connected to {host}:{port}; 'help' lists commands, 'exit' or Ctrl-D leaves.")
        while not sh.closed:
            try:
                line = input(sh.prompt)
            except EOFError:
                line = "exit"
                print()
            reply = sh.cmd(line)
            if reply:
                print(reply)
    return 0
