"""`invoke scan`: probe the shell port of many addresses at once, identify nodes
with `hello`, listen for mDNS, and record what answered in the device cache."""
import asyncio
import ipaddress
import socket
from pathlib import Path

from microsctl import MicrosError
from microsctl.fleet import cache as devcache
from microsctl.fleet.aclient import AsyncShell, AuthFailed, Offline, parse_hello

MAX_HOSTS = 65536  # a /16; more is a typo more often than a network
CONCURRENCY = 256


def own_subnet():
    """The machine's LAN: the network of the interface that routes outwards (no packet is sent)."""
    import ifaddr

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
            ip = s.getsockname()[0]
        except OSError as err:
            raise MicrosError("no network route found to pick the LAN: give --subnet CIDR or --hosts FILE") from err
    for adapter in ifaddr.get_adapters():
        for a in adapter.ips:
            if a.ip == ip:
                return ipaddress.ip_network(f"{ip}/{max(a.network_prefix, 16)}", strict=False)
    return ipaddress.ip_network(f"{ip}/24", strict=False)


def subnet_targets(cidr, port):
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as err:
        raise MicrosError(f"--subnet takes a network such as 192.168.1.0/24, not {cidr!r}") from err
    if net.version != 4:
        raise MicrosError("--subnet takes an IPv4 network such as 192.168.1.0/24")
    if net.num_addresses > MAX_HOSTS:
        raise MicrosError(f"{cidr} has {net.num_addresses} addresses; scan at most a /16 at a time")
    hosts = list(net.hosts()) if net.num_addresses > 2 else list(net)
    return [(str(h), port) for h in hosts]


def file_targets(path, port):
    """One address a line (`host` or `host:port`); blank lines and # comments skipped."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise MicrosError(f"cannot read --hosts {path} ({err.strerror or err})") from err
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        addr = devcache.parse_address(line, port)
        if not addr:
            raise MicrosError(f"{path}:{n}: {line!r} is not an IP address (host or host:port)")
        out.append(addr)
    return out


async def probe(host, port, timeout=0.5, password=None):
    """One address -> {host, port, fuid, uid, status} when a micrOS shell answers, else None."""
    try:
        async with await AsyncShell.connect(host, port, timeout, password) as sh:
            hello = parse_hello(await sh.cmd("hello"))
    except AuthFailed as err:  # a node, but locked: its prompt still names it
        return {"host": host, "port": port, "fuid": err.fuid, "uid": None, "status": "auth failed"}
    except Offline:
        return None
    if not hello:
        return None
    return {"host": host, "port": port, "fuid": hello[0], "uid": hello[1], "status": "online"}


async def probe_all(targets, timeout=0.5, concurrency=CONCURRENCY, progress=None):
    sem = asyncio.Semaphore(concurrency)

    async def one(host, port):
        async with sem:
            res = await probe(host, port, timeout)
        if progress:
            progress(res)
        return res

    return [r for r in await asyncio.gather(*(one(h, p) for h, p in targets)) if r]


def run_probes(targets, timeout=0.5, concurrency=CONCURRENCY, show=True):
    """Probe with a progress bar (on stderr) when show."""
    if not show:
        return asyncio.run(probe_all(targets, timeout, concurrency))
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cols = (TextColumn("[scan]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[found]} found"),
            TimeElapsedColumn())
    with Progress(*cols, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("scan", total=len(targets), found=0)
        found = []

        def step(res):
            if res:
                found.append(res)
            bar.update(task, advance=1, found=len(found))

        return asyncio.run(probe_all(targets, timeout, concurrency, step))


def scan(subnet=None, hosts=None, port=devcache.DEFAULT_PORT, timeout=0.5, mdns_timeout=1.5,
         concurrency=CONCURRENCY, cache=None, show=True):
    """Probe, browse mDNS, update the cache; returns the nodes found (dicts, sorted by address)."""
    targets = []
    if hosts:
        targets += file_targets(hosts, port)
    if subnet or not hosts:
        net = subnet or str(own_subnet())
        targets += subnet_targets(net, port)
    found = run_probes(list(dict.fromkeys(targets)), timeout, concurrency, show)
    if mdns_timeout:
        from microsctl.fleet import mdns

        seen = {(f["host"], f["port"]) for f in found}
        extra = [(h, p) for h, p, _ in mdns.browse(mdns_timeout) if (h, p) not in seen]
        for f in asyncio.run(probe_all(extra, timeout)) if extra else []:
            f["mdns"] = True
            found.append(f)
    cache = cache if cache is not None else devcache.Cache()
    for f in found:
        if f["status"] == "online":
            cache.add(f["uid"], f["fuid"], f["host"], f["port"])
        else:  # locked: known by its address until it can be asked its hwuid
            cache.add(f"{f['host']}:{f['port']}", f["fuid"], f["host"], f["port"], locked=True)
    cache.save()
    return sorted(found, key=lambda f: (ipaddress.ip_address(f["host"]), f["port"]))
