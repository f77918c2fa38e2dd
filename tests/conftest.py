import socket

import pytest

from microsctl.client import Shell
from microsctl.sim import SimNode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def make_node(tmp_path):
    """Factory: boot a virtual node (real MicroPython) in tmp_path; stopped at teardown."""
    nodes = []

    def make(profile="default", sets=(), heap="128k", name=None, start=True, **kw):
        n = SimNode(name or f"n{len(nodes)}", root=tmp_path, heap=heap, **kw)
        n.prepare(profile, list(sets), port=free_port())
        nodes.append(n)
        if start:
            n.start()
        return n

    yield make
    for n in nodes:
        n.stop()


@pytest.fixture
def node(make_node):
    return make_node()


@pytest.fixture
def sh(node):
    with Shell(node.port) as s:
        yield s
