"""The fleet toolkit against a virtual LAN: real micrOS nodes (MicroPython unix port) on
127.0.0.2-127.0.0.8, all on one port, one of them stopped, and on 127.0.0.9 a node with
authentication on. Only loopback is ever a target here."""
import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import threading

import pytest

from microsctl import MicrosError, ROOT
from microsctl.fleet import api, backup, cache as devcache, scan, simfleet, status
from microsctl.fleet.aclient import AsyncShell, AuthFailed, parse_hello
from microsctl.node.client import Shell
from microsctl.node.sim import SimNode, free_port

HOSTS = [f"127.0.0.{i}" for i in range(2, 9)]  # real nodes; the last one is stopped after boot
LOCKED = "127.0.0.9"
STOPPED = HOSTS[-1]


class LockedNode:
    """A node with authentication on. Our nodes have no password yet (issue 10), so this
    stands in for one, speaking the original micrOS v3.3 login as
    shared/reference/micros-upstream.md records it: the prompt `[password] <devfid> $ `,
    the first line is the password, then `AuthOk` and the normal prompt, or `AuthFailed`
    and `Bye!` and the connection closed."""

    def __init__(self, host, port, devfid="locked01", password="s3cret"):
        self.host, self.port, self.devfid, self.password = host, port, devfid, password
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, self.host, self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _serve(self, r, w):
        w.write(f"[password] {self.devfid} $ ".encode())
        line = (await r.readline()).decode().strip()
        if line != self.password:
            w.write(b"AuthFailed\nBye!\n")
        else:
            w.write(f"AuthOk\n{self.devfid} $ ".encode())
            while line := (await r.readline()).decode().strip():
                w.write(f"hello:{self.devfid}:aa:bb:cc:dd:ee:ff\n{self.devfid} $ ".encode() if line == "hello"
                        else f"Error: not modelled\n{self.devfid} $ ".encode())
                await w.drain()
        await w.drain()
        w.close()

    def stop(self):
        async def close():
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    root = tmp_path_factory.mktemp("lan")
    port = free_port()
    nodes = []
    for i, host in enumerate(HOSTS, 1):
        n = SimNode(f"fleet{i:02d}", root=root, host=host)
        n.prepare("default", [f"devfid=fleet{i:02d}", "staessid=simlan"], port=port)
        nodes.append(n)
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready(20)
        nodes[-1].stop()
        locked = LockedNode(LOCKED, port)
        yield {"port": port, "nodes": nodes[:-1], "stopped": nodes[-1], "locked": locked, "root": root}
        locked.stop()
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture
def data(tmp_path, monkeypatch):
    """The user's data folder (device cache, backups) in tmp_path, for this process and the CLI."""
    monkeypatch.setenv("MICROS_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MICROS_SECRETS", raising=False)
    monkeypatch.setenv("MICROS_MDNS_INTERFACES", "127.0.0.1")
    return tmp_path / "data"


def inv(*args):
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))


def scanned(lan):
    c = devcache.Cache()
    scan.scan("127.0.0.0/24", port=lan["port"], mdns_timeout=0, cache=c, show=False)
    return devcache.Cache()


# -- virtual nodes on many loopback addresses ------------------------------------------------

def test_nodes_share_a_port_on_their_own_addresses(lan):
    """Each node's shell binds its own 127.0.0.N (ports/unix/simboot.py), and the board's
    network shim gives the station that address, which the node keeps as its static IP."""
    port = lan["port"]
    for n in lan["nodes"]:
        with Shell(port, n.host) as sh:
            assert sh.cmd("hello").startswith(f"hello:{n.name}:")
            info = json.loads(sh.cmd("system info >json"))
        assert info["devip"] == n.host and info["nwmd"] == "STA" and info["rssi"] == -55
    with pytest.raises(MicrosError):  # nothing on 127.0.0.1 at that port
        Shell(port, "127.0.0.1", timeout=1)


def test_sim_task_refuses_a_non_loopback_host():
    res = inv("sim", "--host", "192.168.1.7")
    assert res.returncode == 1
    assert res.stderr.strip() == ("error: --host takes a loopback address such as 127.0.0.2 (127.0.0.0/8), "
                                  "not '192.168.1.7'")


def test_system_info_is_one_json_object_with_what_status_needs(node):
    """On the unix port: `system info >json` is a JSON object (not a string) with the table's fields;
    a node in AP mode (the default profile's placeholder WiFi) has no RSSI."""
    with Shell(node.port) as sh:
        info = json.loads(sh.cmd("system info >json"))
    assert isinstance(info, dict)
    assert {"devfid", "hwuid", "version", "memfree", "uptime_s", "rssi"} <= set(info)
    assert info["rssi"] is None and info["nwmd"] == "AP" and isinstance(info["memfree"], int)


# -- scan -----------------------------------------------------------------------------------

def test_scan_finds_the_running_nodes_and_fills_the_cache(lan, data):
    found = scan.scan("127.0.0.0/24", port=lan["port"], mdns_timeout=0, show=False)
    by_host = {f["host"]: f for f in found}
    assert set(by_host) == {n.host for n in lan["nodes"]} | {LOCKED}
    for n in lan["nodes"]:
        assert by_host[n.host]["fuid"] == n.name and by_host[n.host]["status"] == "online"
    assert by_host[LOCKED] == {"host": LOCKED, "port": lan["port"], "fuid": "locked01", "uid": None,
                               "status": "auth failed"}
    c = devcache.Cache()
    assert c.path == data / "devices.json"
    assert {d["fuid"] for d in c.devices.values()} == {n.name for n in lan["nodes"]} | {"locked01"}


def test_scan_from_a_hosts_file_only_probes_those(lan, data, tmp_path):
    f = tmp_path / "hosts.txt"
    f.write_text(f"# two nodes and a stopped one\n{HOSTS[0]}\n\n{HOSTS[1]}:{lan['port']}\n{STOPPED}\n")
    found = scan.scan(hosts=f, port=lan["port"], mdns_timeout=0, show=False)
    assert [x["fuid"] for x in found] == ["fleet01", "fleet02"]
    f.write_text("kitchen\n")
    with pytest.raises(MicrosError, match=r"hosts.txt:1: 'kitchen' is not an IP address"):
        scan.scan(hosts=f, port=lan["port"], mdns_timeout=0, show=False)


def test_scan_subnet_checks():
    assert len(scan.subnet_targets("127.0.0.0/24", 9008)) == 254
    with pytest.raises(MicrosError, match="at most a /16"):
        scan.subnet_targets("10.0.0.0/8", 9008)
    with pytest.raises(MicrosError, match="--subnet takes a network"):
        scan.subnet_targets("10.0.0/33", 9008)


def test_scan_task_with_progress_and_json(lan, data):
    res = inv("scan", "--subnet", "127.0.0.0/24", "--port", str(lan["port"]), "--mdns", "0", "--json")
    assert res.returncode == 0, res.stderr
    assert {f["fuid"] for f in json.loads(res.stdout)} == {n.name for n in lan["nodes"]} | {"locked01"}
    assert "254/254" in res.stderr  # the progress bar, on stderr


def test_mdns_browse_and_name_resolution_on_loopback(lan, data):
    """No node announces itself here, so the test announces one with zeroconf on loopback:
    the scan hears it although the address is outside the probed list, and a name missing
    from the cache resolves as <name>.local."""
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    n = lan["nodes"][2]
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    info = ServiceInfo("_micros._tcp.local.", f"{n.name}._micros._tcp.local.", port=lan["port"],
                       addresses=[socket.inet_aton(n.host)], server=f"{n.name}.local.")
    zc.register_service(info)
    try:
        hosts = data.parent / "none.txt"
        hosts.write_text("")
        found = scan.scan(hosts=hosts, port=lan["port"], mdns_timeout=2, show=False)
        assert [(f["host"], f["fuid"], f.get("mdns")) for f in found] == [(n.host, n.name, True)]
        devcache.Cache(data / "devices.json").path.unlink()
        assert devcache.resolve(n.name, mdns_timeout=2) == (n.host, 9008, None)
    finally:
        zc.unregister_service(info)
        zc.close()


# -- the device cache ---------------------------------------------------------------------------

def test_original_cache_is_imported(tmp_path, data):
    orig = tmp_path / "device_conn_cache.json"
    orig.write_text(json.dumps({"0x5c0xcf0x7f0x130xd60x41": ["192.168.1.20", "5c:cf:7f:13:d6:41", "slim01"],
                                "0xa40xcf0x120x000x000x01": ["192.168.1.21"]}))
    c = devcache.Cache()
    assert c.import_original(orig) == 2
    c.save()
    again = devcache.Cache()
    assert devcache.resolve("slim01", cache=again) == ("192.168.1.20", 9008, "0x5c0xcf0x7f0x130xd60x41")
    assert devcache.resolve("0xa40xcf0x120x000x000x01", cache=again)[:2] == ("192.168.1.21", 9008)
    assert again.devices["0x5c0xcf0x7f0x130xd60x41"]["mac"] == "5c:cf:7f:13:d6:41"
    orig.write_text(json.dumps({"x": ["not-an-ip"]}))
    with pytest.raises(MicrosError, match="entry 'x' has no IP address"):
        devcache.Cache().import_original(orig)


def test_import_through_the_scan_task(tmp_path, data):
    orig = tmp_path / "device_conn_cache.json"
    orig.write_text(json.dumps({"u1": ["127.0.0.250", "", "attic"]}))
    res = inv("scan", "--import-original", str(orig))
    assert res.returncode == 0 and "imported 1 nodes" in res.stdout
    assert devcache.Cache().resolve("attic")[1]["host"] == "127.0.0.250"


def test_two_nodes_with_one_name_are_not_guessed(data):
    c = devcache.Cache()
    c.add("u1", "node01", "127.0.0.2", 9008)
    c.add("u2", "node01", "127.0.0.3", 9008)
    with pytest.raises(MicrosError, match="2 nodes are called 'node01'"):
        devcache.resolve("node01", cache=c)
    assert devcache.resolve("u2", cache=c)[:2] == ("127.0.0.3", 9008)
    assert devcache.resolve("127.0.0.7:9100", cache=c) == ("127.0.0.7", 9100, None)


def test_a_node_moving_to_a_new_address_is_one_entry(data):
    c = devcache.Cache()
    c.add("u1", "a", "127.0.0.2", 9008)
    c.add("u1", "a", "127.0.0.3", 9008)
    c.add("u2", "b", "127.0.0.3", 9008)  # the address now belongs to other hardware
    assert {u: d["host"] for u, d in c.devices.items()} == {"u2": "127.0.0.3"}


# -- status ---------------------------------------------------------------------------------

def test_status_all_online_offline_and_auth_failed(lan, data):
    lan_stopped = lan["stopped"]
    lan_stopped.start()  # seen by a scan while it ran, then stopped
    try:
        assert scanned(lan).resolve(lan_stopped.name)[1]["host"] == STOPPED
    finally:
        lan_stopped.stop()
    c = devcache.Cache()
    rows = {r["host"]: r for r in status.status(all_=True)}
    assert rows[STOPPED]["status"] == "offline" and rows[STOPPED]["fuid"] == lan_stopped.name
    assert rows[STOPPED]["memfree"] is None
    assert rows[LOCKED]["status"] == "auth failed" and rows[LOCKED]["fuid"] == "locked01"
    for n in lan["nodes"]:
        r = rows[n.host]
        assert r["status"] == "online" and r["fuid"] == n.name and r["version"] == "0.1.0"
        assert isinstance(r["memfree"], int) and r["memfree"] > 0 and r["rssi"] == -55
        assert r["uid"] == c.resolve(n.name)[0]
    res = inv("status", "--all")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["UID", "FUID", "IP", "STATUS", "MEMFREE", "VERSION", "UPTIME", "RSSI"]
    assert any(f"{STOPPED}:{lan['port']}" in ln and " offline " in ln for ln in lines)
    assert any("locked01" in ln and " auth failed " in ln for ln in lines)
    res = inv("status", "--dev", "fleet03", "--json")
    (one,) = json.loads(res.stdout)
    assert one["status"] == "online" and one["fuid"] == "fleet03" and one["host"] == HOSTS[2]


def test_status_with_the_right_password_is_online(lan):
    async def go(pw):
        async with await AsyncShell.connect(LOCKED, lan["port"], 2, pw) as sh:
            return parse_hello(await sh.cmd("hello"))

    assert asyncio.run(go("s3cret")) == ("locked01", "aa:bb:cc:dd:ee:ff")
    with pytest.raises(AuthFailed, match="refused the password"):
        asyncio.run(go("wrong"))


def test_hello_forms():
    """Ours, the original v0.4's (MAC bytes as hex() joined) and v3.3's (`:dev` / `:rel` after the hwuid)."""
    assert parse_hello("hello:fleet01:02:00:00:c5:e7:cf") == ("fleet01", "02:00:00:c5:e7:cf")
    assert parse_hello("hello:slim01:0x500x20x910x680xc0xf7") == ("slim01", "0x500x20x910x680xc0xf7")
    assert parse_hello("hello:node01:0x5c0xcf:rel") == ("node01", "0x5c0xcf")
    assert parse_hello("Error: unknown module hello") is None and parse_hello("") is None


def test_status_without_a_cache_says_what_to_do(data):
    res = inv("status")
    assert res.returncode == 1
    assert res.stderr.strip().startswith("error: the device cache") and "invoke scan" in res.stderr


# -- --dev and <a> -----------------------------------------------------------------------------

def test_dev_works_for_each_node(lan, data):
    scanned(lan)
    for n in lan["nodes"]:
        res = inv("shell", "--dev", n.name, "-c", "hello")
        assert res.returncode == 0 and res.stdout.startswith(f"hello:{n.name}:"), res.stderr
    res = inv("shell", "--dev", lan["stopped"].name, "-c", "hello")
    assert res.returncode == 1 and "no node called 'fleet07'" in res.stderr


def test_a_list_joined_with_a_as_the_original(lan, data):
    scanned(lan)
    res = inv("shell", "--dev", "fleet02", "-c", "conf<a>devfid<a>noconf<a>hello")
    assert res.returncode == 0
    assert res.stdout.splitlines() == ["fleet02", "hello:fleet02:" + devcache.Cache().resolve("fleet02")[0]]
    res = inv("shell", "--dev", "fleet02", "-c", "hello<a>nosuch thing")
    assert res.returncode == 1 and res.stdout.splitlines()[-1].startswith("Error: ")


# -- backup and restore -------------------------------------------------------------------------

def test_backup_restore_round_trip_with_secrets(lan, data, tmp_path, monkeypatch):
    scanned(lan)
    n = lan["nodes"][3]
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"stapwd": "wifi-pass-1", "appwd": "ap-pass-12"}))
    monkeypatch.setenv("MICROS_SECRETS", str(secrets))
    res = inv("backup", "--dev", n.name)
    assert res.returncode == 0, res.stderr
    assert "wifi-pass-1" not in res.stdout + res.stderr
    (path,) = (data / "backups" / n.name).glob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["config"]["devfid"] == n.name and saved["config"]["gmttime"] == 1
    assert "stapwd" not in saved["config"]  # the node never shows it
    assert saved["secrets"] == {"stapwd": "wifi-pass-1", "appwd": "ap-pass-12"}
    with Shell(lan["port"], n.host) as sh:  # the node's settings drift
        for line in ("conf", "gmttime -5", "timirqcbf 'system heartbeat'", "pled False", "noconf"):
            sh.cmd(line)
    res = inv("restore", "--dev", n.name)
    assert res.returncode == 0, res.stderr
    assert "settings written" in res.stdout and "wifi-pass" not in res.stdout
    cfg = json.loads((n.config_path).read_text())  # the node's own file
    assert cfg["gmttime"] == 1 and cfg["timirqcbf"] == "n/a" and cfg["pled"] is True
    assert cfg["stapwd"] == "wifi-pass-1" and cfg["appwd"] == "ap-pass-12"


def test_backup_without_secrets_and_all(lan, data, tmp_path, monkeypatch):
    scanned(lan)
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"stapwd": "wifi-pass-1"}))
    monkeypatch.setenv("MICROS_SECRETS", str(secrets))
    res = inv("backup", "--all", "--no-secrets")
    assert res.returncode == 1  # the locked one cannot be read; the others are kept
    assert res.stderr.strip() == "error: 1 of 7 nodes were not backed up (see above)"
    assert "locked01: the node at 127.0.0.9" in res.stdout
    files = list((data / "backups").rglob("*.json"))
    assert {p.parent.name for p in files} == {n.name for n in lan["nodes"]}
    assert all("secrets" not in json.loads(p.read_text()) for p in files)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


def test_restore_refuses_a_bad_file_before_writing(lan, data, tmp_path):
    scanned(lan)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"config": {"gmttime": 99}}))
    res = inv("restore", "--dev", "fleet01", "--from", str(bad))
    assert res.returncode == 1 and "nothing was written" in res.stderr


# -- the Python API -----------------------------------------------------------------------------

def test_api_by_name_and_address(lan, data):
    scanned(lan)
    with api.connect("fleet01") as node:
        info = node.call("system", "info")
        assert info["devfid"] == "fleet01"
        assert node.call("gpio", "RGB", 10, 0, 0) == "SET RGB"
        with pytest.raises(api.NodeError, match="unknown module"):
            node.call("nosuch", "thing")
    with api.connect(f"{HOSTS[1]}:{lan['port']}") as node:
        assert node.cmd("hello").startswith("hello:fleet02:")


def test_api_many_nodes_at_once(lan, data):
    scanned(lan)
    names = [n.name for n in lan["nodes"]] + [f"{STOPPED}:{lan['port']}"]
    res = api.call_many(names, "system", "info")
    for n in lan["nodes"]:
        assert res[n.name]["devfid"] == n.name
    assert isinstance(res[f"{STOPPED}:{lan['port']}"], MicrosError)


def test_api_command_lines():
    assert api.command("gpio", "RGB", 1, 0, 0) == "gpio RGB 1 0 0 >json"
    assert api.command("m", "f", "a b", None, True, x=1.5) == 'm f "a b" None True x=1.5 >json'
    assert api.command("m", "f", 'say "hi"') == "m f 'say \"hi\"' >json"
    for bad in (("m", "f", "a\nb"), ("m", "f", "'\""), ("m", "f", [1]), ("m;x", "f")):
        with pytest.raises(MicrosError):
            api.command(*bad)


def test_example_app_drives_several_nodes(lan, data):
    scanned(lan)
    names = [n.name for n in lan["nodes"][:3]]
    res = subprocess.run([sys.executable, str(ROOT / "apps" / "rainbow.py"), *names], capture_output=True,
                         text=True, timeout=60, env=dict(os.environ))
    assert res.returncode == 0, res.stderr
    for name in names:
        assert f"{name}: SET RGB" in res.stdout


# -- the background fleet -------------------------------------------------------------------

def test_fleet_sim_starts_and_stops_in_the_background(tmp_path):
    port = free_port()
    st = simfleet.start(2, port, first="127.0.0.20", root=tmp_path, show_progress=False)
    try:
        for n in st["nodes"]:
            with Shell(port, n["host"]) as sh:
                assert sh.cmd("hello").startswith(f"hello:{n['name']}:")
        with pytest.raises(MicrosError, match="already runs"):
            simfleet.start(2, port, first="127.0.0.20", root=tmp_path, show_progress=False)
    finally:
        assert simfleet.stop(tmp_path) == 2
    for n in st["nodes"]:
        with pytest.raises(OSError):
            socket.create_connection((n["host"], port), 1).close()
    assert not simfleet._alive(st["pid"])
    assert simfleet.stop(tmp_path) == 0


def test_sim_task_serves_on_the_given_address():
    """`invoke sim --host 127.0.0.N` in the foreground, as a user runs it; Ctrl-C stops it."""
    import shutil
    import signal
    import time
    import uuid

    from microsctl.node.sim import SIM_ROOT

    name, port = f"hosttest-{uuid.uuid4().hex[:8]}", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "invoke", "sim", "--host", "127.0.0.31", "--port", str(port),
                             "--node", name], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 20
        while True:
            try:
                with Shell(port, "127.0.0.31", timeout=2) as sh:
                    info = json.loads(sh.cmd("system info >json"))
                break
            except MicrosError:
                assert time.monotonic() < end and proc.poll() is None, proc.stdout.read() if proc.poll() else ""
                time.sleep(0.1)
        assert info["devip"] == "127.0.0.31"
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=20)[0]
        shutil.rmtree(SIM_ROOT / name, ignore_errors=True)
    assert f"invoke shell --port {port} --host 127.0.0.31" in out
    assert proc.returncode == 0, out


def test_status_of_a_node_with_our_shell_auth(make_node, monkeypatch, tmp_path):
    """A node with auth on (issue 10: HMAC challenge, micros/auth.py): without the key the row says
    auth failed and still names the node; with MICROS_AUTHKEY it is online with its figures."""
    from microsctl.flashing import profiles
    from microsctl.fleet import status

    monkeypatch.setattr(profiles, "SECRETS_FILE", tmp_path / "no-secrets.json")
    for k in ("MICROS_SECRETS", "MICROS_AUTHKEY"):
        monkeypatch.delenv(k, raising=False)
    n = make_node(name="keyed", sets=["authkey=fleet-key-0001", "devfid=keyed01"])
    target = {"uid": None, "fuid": None, "host": "127.0.0.1", "port": n.port}
    row = asyncio.run(status.node_status(dict(target)))
    assert row["status"] == "auth failed" and row["fuid"] == "keyed01" and row["memfree"] is None
    monkeypatch.setenv("MICROS_AUTHKEY", "fleet-key-0001")
    row = asyncio.run(status.node_status(dict(target)))
    assert row["status"] == "online" and row["fuid"] == "keyed01" and row["memfree"] > 0
