"""invoke sim --host: the address given (or the default) wins at each boot of a kept node
(microsctl/node/sim.py), though the node keeps its first STA address as static (frozen/micros/net.py)."""
import json

from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port


def devip(n):
    with Shell(n.port, n.host) as s:
        return json.loads(s.cmd("system info >json"))["devip"]


def boot(tmp_path, host):
    n = SimNode("kept", root=tmp_path, host=host)
    n.prepare("default", ["staessid=homenet", "stapwd=pa55word"], port=free_port())
    n.start()
    return n


def test_a_later_boot_reports_its_own_address_not_an_earlier_hosts(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROS_SIM_WIFI", "homenet:pa55word")
    for host, want in (("127.0.0.5", "127.0.0.5"), ("127.0.0.1", "127.0.0.1"), ("127.0.0.6", "127.0.0.6"),
                       ("127.0.0.1", "127.0.0.1")):
        n = boot(tmp_path, host)
        try:
            assert devip(n) == want, host
        finally:
            n.stop()
        assert n.config()["devip"] == want


def test_the_default_host_leaves_a_fresh_nodes_devip_alone(tmp_path):
    n = SimNode("ap", root=tmp_path)
    assert n.prepare("default", port=free_port())["devip"] == "n/a"  # AP mode: never joined a network
    assert n.prepare("default")["devip"] == "n/a"
    n.config_path.write_text(json.dumps(dict(n.config(), devip="127.0.0.1")))  # learnt at an STA join
    assert n.prepare("default")["devip"] == "127.0.0.1"
    assert n.prepare("default", ["devip=127.0.0.9"])["devip"] == "127.0.0.9"  # --set devip=... is kept
    assert n.prepare("default")["devip"] == "n/a"  # the next plain boot: a fresh node's again
