"""A Python client for applications: talk to micrOS nodes by name or address.

    from microsctl.fleet import api

    with api.connect("kitchen") as node:            # a name from the device cache, or "192.168.1.20[:9008]"
        print(node.call("system", "info"))          # -> {'devfid': 'kitchen', 'memfree': 81472, ...}
        node.call("gpio", "RGB", 1000, 0, 0)        # `gpio RGB 1000 0 0 >json` on the node

    # many nodes at once (asyncio): {name: result, or the exception it raised}
    api.call_many(["kitchen", "hall"], "system", "memfree")

    async with await api.AsyncNode.connect("hall") as node:
        await node.call("system", "time")

`call(module, function, *args, **kwargs)` sends `<module> <function> <args> [key=value] >json`
and returns the decoded JSON; an `Error: ` reply raises NodeError. Arguments are numbers,
strings, True/False/None: the node parses them as literals (frozen/micros/call.py), it
never evaluates them. A node that asks for a password gets `password` (authentication on
the node is issue 10; until then the argument is only sent to nodes that ask for one).
"""
import asyncio
import json

from microsctl import MicrosError
from microsctl.fleet import cache as devcache
from microsctl.fleet.aclient import AsyncShell, is_error


class NodeError(MicrosError):
    """The node answered with an `Error: ` line."""


def command(module, function, *args, **kwargs):
    """The shell line for a call, e.g. command("gpio", "RGB", 1, 0, 0) -> 'gpio RGB 1 0 0 >json'."""
    parts = [_name(module), _name(function)]
    parts += [_literal(a) for a in args]
    parts += [f"{_name(k)}={_literal(v)}" for k, v in kwargs.items()]
    return " ".join(parts) + " >json"


def _name(s):
    if not isinstance(s, str) or not s.isidentifier():
        raise MicrosError(f"{s!r} is not a module, function or keyword name")
    return s


def _literal(v):
    if v is None or isinstance(v, (bool, int, float)):
        return repr(v)
    if isinstance(v, str):
        if "\n" in v:
            raise MicrosError("an argument cannot hold a newline: the shell takes one line a command")
        if '"' not in v:
            return f'"{v}"'
        if "'" not in v:
            return f"'{v}'"
        raise MicrosError(f"{v!r}: an argument cannot hold both kinds of quote")
    raise MicrosError(f"{v!r}: arguments are numbers, strings, True, False or None")


def _decode(reply, line):
    if is_error(reply):
        raise NodeError(f"{line}: {reply.strip()}")
    try:
        return json.loads(reply) if reply.strip() else None
    except ValueError:
        return reply


class AsyncNode:
    """One node over one connection, for asyncio code."""

    def __init__(self, shell, name):
        self.shell = shell
        self.name = name

    @classmethod
    async def connect(cls, name, port=None, timeout=5.0, password=None, cache=None):
        # the mDNS fallback waits on the network: off the event loop, so other nodes go on
        host, p, _ = await asyncio.to_thread(devcache.resolve, name, port, cache)
        return cls(await AsyncShell.connect(host, p, timeout, password), name)

    async def cmd(self, line):
        """One raw shell line -> its reply text."""
        return await self.shell.cmd(line)

    async def call(self, module, function, *args, **kwargs):
        line = command(module, function, *args, **kwargs)
        return _decode(await self.shell.cmd(line), line)

    async def close(self):
        await self.shell.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


class Node:
    """One node over one connection, for plain code; the same calls as AsyncNode, blocking."""

    def __init__(self, name, port=None, timeout=5.0, password=None, cache=None):
        self._loop = asyncio.new_event_loop()
        try:
            self._node = self._loop.run_until_complete(AsyncNode.connect(name, port, timeout, password, cache))
        except BaseException:
            self._loop.close()
            raise
        self.name = name

    def cmd(self, line):
        return self._loop.run_until_complete(self._node.cmd(line))

    def call(self, module, function, *args, **kwargs):
        return self._loop.run_until_complete(self._node.call(module, function, *args, **kwargs))

    def close(self):
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._node.close())
            self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(name, port=None, timeout=5.0, password=None, cache=None):
    """A Node by friendly name, hardware id or address."""
    return Node(name, port, timeout, password, cache)


async def call_many_async(names, module, function, *args, timeout=5.0, cache=None, **kwargs):
    cache = cache if cache is not None else devcache.Cache()

    async def one(name):
        try:
            async with await AsyncNode.connect(name, timeout=timeout, cache=cache) as node:
                return await node.call(module, function, *args, **kwargs)
        except MicrosError as err:
            return err

    results = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, results))


def call_many(names, module, function, *args, timeout=5.0, cache=None, **kwargs):
    """The same call on many nodes at once: {name: result, or the MicrosError it ended in}."""
    return asyncio.run(call_many_async(names, module, function, *args, timeout=timeout, cache=cache, **kwargs))
