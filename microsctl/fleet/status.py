"""`invoke status`: every node's state in one table, asked in parallel.

One connection a node, two commands (`hello`, `system info >json`). A node that does
not answer stays in the table as offline; one that asks for a password we do not have
(or refuses ours) is `auth failed`."""
import asyncio
import json

from microsctl import MicrosError
from microsctl.fleet import cache as devcache
from microsctl.fleet.aclient import AsyncShell, AuthFailed, Offline, is_error, parse_hello

ONLINE, OFFLINE, AUTH_FAILED = "online", "offline", "auth failed"
COLUMNS = ("UID", "FUID", "IP", "STATUS", "MEMFREE", "VERSION", "UPTIME", "RSSI")


async def node_status(target, timeout=2.0, password=None):
    """target: {uid, fuid, host, port} -> the same with status and what the node told."""
    row = dict(target, status=OFFLINE, memfree=None, version=None, uptime_s=None, rssi=None, error=None)
    try:
        async with await AsyncShell.connect(target["host"], target["port"], timeout, password) as sh:
            hello = parse_hello(await sh.cmd("hello"))
            reply = await sh.cmd("system info >json")
    except AuthFailed as err:
        row.update(status=AUTH_FAILED, error=str(err), fuid=row.get("fuid") or err.fuid)
        return row
    except Offline as err:
        row["error"] = str(err)
        return row
    if hello:
        row["fuid"], row["uid"] = hello
    row["status"] = ONLINE
    if is_error(reply):
        row["error"] = reply.strip()
        return row
    try:
        info = json.loads(reply)
    except ValueError:
        row["error"] = "system info >json did not answer JSON (an older core?)"
        return row
    if isinstance(info, dict):
        row.update(memfree=info.get("memfree"), version=info.get("version"), uptime_s=info.get("uptime_s"),
                   rssi=info.get("rssi"))
    return row


async def gather(targets, timeout=2.0, concurrency=64, password=None):
    sem = asyncio.Semaphore(concurrency)

    async def one(t):
        async with sem:
            return await node_status(t, timeout, password)

    return await asyncio.gather(*(one(t) for t in targets))


def targets(dev=None, all_=False, cache=None, port=None):
    """The nodes to ask: one by name/uid/address, or every cached one."""
    cache = cache if cache is not None else devcache.Cache()
    if dev:
        host, p, uid = devcache.resolve(dev, port, cache)
        fuid = cache.devices.get(uid, {}).get("fuid") if uid else None
        return [{"uid": uid, "fuid": fuid, "host": host, "port": p}]
    if not cache.devices:
        raise MicrosError(f"the device cache ({cache.path}) is empty: run 'invoke scan' first, or give --dev ADDRESS")
    return [{"uid": None if d.get("locked") else u, "fuid": d.get("fuid"), "host": d["host"], "port": d["port"]}
            for u, d in cache.rows()]


def status(dev=None, all_=False, cache=None, timeout=2.0, port=None):
    rows = asyncio.run(gather(targets(dev, all_, cache, port), timeout))
    return sorted(rows, key=lambda r: (r["status"] != ONLINE, r.get("fuid") or "", r["host"]))


def _uptime(s):
    if s is None:
        return "-"
    d, s = divmod(int(s), 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return (f"{d}d " if d else "") + f"{h:02d}:{m:02d}:{s:02d}"


def table_rows(rows):
    def cell(v, fmt=str):
        return "-" if v is None else fmt(v)

    return [(cell(r.get("uid")), cell(r.get("fuid")), f"{r['host']}:{r['port']}", r["status"], cell(r["memfree"]),
             cell(r["version"]), _uptime(r["uptime_s"]), cell(r["rssi"], lambda v: f"{v} dBm")) for r in rows]


def as_json(rows):
    keep = ("uid", "fuid", "host", "port", "status", "memfree", "version", "uptime_s", "rssi", "error")
    return json.dumps([{k: r.get(k) for k in keep} for r in rows], indent=1)
