"""The shell client in asyncio, for talking to many nodes at once.

Speaks what microsctl.node.client.Shell speaks (one line a command, every reply
closed by the prompt, our HMAC challenge answered with the key from the secrets
layer), plus the password prompt of the original micrOS (v3.3: `[password] <devfid> $ `,
first line the password, `AuthOk` or `AuthFailed` and `Bye!`), so a node with
authentication on is told apart from one that is down.
"""
import asyncio

from microsctl import MicrosError
from microsctl.node.client import CHALLENGE, answer
from microsctl.node.framing import ERROR, PROMPT, Replies, is_error  # noqa: F401 (for importers)

PASSWORD = "[password] "


class Offline(MicrosError):
    """Nothing answers at the address, or what answers is no micrOS shell."""


class AuthFailed(MicrosError):
    """The node asks for a password and refused ours (or we had none).
    `prompt` is its password prompt, which still names it."""

    def __init__(self, msg, prompt=""):
        super().__init__(msg)
        self.prompt = prompt

    @property
    def fuid(self):
        prompt = self.prompt[len(PASSWORD):] if self.prompt.startswith(PASSWORD) else self.prompt
        return prompt.rsplit(" $", 1)[0] or None


class AsyncShell:
    """One connection: `await AsyncShell.connect(host, port)`, then `await sh.cmd(line)`."""

    def __init__(self, host, port, reader, writer, timeout):
        self.host, self.port = host, port
        self.reader, self.writer = reader, writer
        self.timeout = timeout
        self.closed = False
        self.rx = Replies()

    @property
    def prompt(self):
        """The node's last prompt, which closed the last reply."""
        return self.rx.prompt

    @classmethod
    async def connect(cls, host, port, timeout=2.0, password=None):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, asyncio.TimeoutError) as err:
            why = "no answer" if isinstance(err, asyncio.TimeoutError) else (err.strerror or str(err))
            raise Offline(f"no micrOS shell at {host}:{port} ({why})") from err
        sh = cls(host, port, r, w, timeout)
        try:
            greeting = await sh._read_reply()
            m = CHALLENGE.search(greeting)
            if m:
                await sh._answer(m.group(1), password)
            elif sh.prompt.startswith(PASSWORD):
                await sh._login(password)
        except BaseException:
            await sh.close()
            raise
        return sh

    async def _answer(self, nonce, key):
        """Our challenge-response (docs/security.md); key None: the secrets layer's."""
        where = "secrets.json"
        if key is None:
            from microsctl.flashing import profiles

            key, where = profiles.shell_key()  # with the task's --profile, its secrets file too
        if not key:
            raise AuthFailed(f"the node at {self.host}:{self.port} asks for its shell key and none is known "
                             f"(set MICROS_AUTHKEY or authkey in {where})", self.prompt)
        reply = await self.cmd("auth " + answer(key, nonce))
        if reply != "Authenticated":
            raise AuthFailed(f"the node at {self.host}:{self.port} refused the shell key", self.prompt)

    async def _login(self, password):
        if password is None:
            raise AuthFailed(f"the node at {self.host}:{self.port} asks for a password and none is known for it",
                             self.prompt)
        asked = self.prompt
        reply = await self.cmd(password)
        if "AuthOk" not in reply or self.prompt.startswith(PASSWORD):
            raise AuthFailed(f"the node at {self.host}:{self.port} refused the password", asked)

    async def _read_reply(self):
        while (reply := self.rx.reply()) is None:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), self.timeout)
            except asyncio.TimeoutError as err:
                raise Offline(f"the node at {self.host}:{self.port} stopped answering") from err
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                if not self.rx.buf:
                    raise Offline(f"the node at {self.host}:{self.port} closed the connection")
                return self.rx.rest()
            self.rx.feed(chunk)
        return reply

    async def cmd(self, line):
        """Send one line; the reply without the prompt and the last newline."""
        if self.closed:
            raise Offline(f"the node at {self.host}:{self.port} closed the connection")
        try:
            self.writer.write(line.encode() + b"\n")
            await self.writer.drain()
        except OSError as err:
            self.closed = True
            raise Offline(f"the node at {self.host}:{self.port} closed the connection") from err
        return (await self._read_reply()).rstrip("\n")

    async def close(self):
        self.closed = True
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except (OSError, asyncio.CancelledError):
            pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


def parse_hello(reply):
    """`hello:<devfid>:<hwuid>` (the original v3.3 adds `:dev` or `:rel`) -> (devfid, hwuid);
    None for anything else."""
    line = reply.strip().splitlines()[-1] if reply.strip() else ""
    if not line.startswith("hello:"):
        return None
    fid, _, uid = line[6:].partition(":")
    if uid.endswith((":dev", ":rel")):
        uid = uid[:-4]
    return (fid, uid) if fid else None
