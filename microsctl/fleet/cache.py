"""The device cache: every node seen, by hardware id, with its name and address.

Kept as JSON in the user's data folder (platformdirs; $MICROS_DATA overrides it),
written whole through a temp file and a rename. One entry per node:

    {"version": 1, "devices": {"<hwuid>": {"fuid": "kitchen", "host": "192.168.1.20",
                                           "port": 9008, "seen": "2026-11-25T18:30:00+00:00"}}}

The original micrOS kept `device_conn_cache.json` as `{"<uid>": ["<ip>", "<mac>", "<fuid>"]}`
(only the IP required); `import_original` reads that form.
"""
import ipaddress
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from microsctl import MicrosError

DEFAULT_PORT = 9008  # socport's default, and the original's one port
FILE = "devices.json"


def data_dir():
    env = os.environ.get("MICROS_DATA")
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("micros", appauthor=False)


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Cache:
    def __init__(self, path=None):
        self.path = Path(path) if path else data_dir() / FILE
        self.devices = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.devices = dict(data["devices"])
            except (ValueError, KeyError, TypeError) as err:
                raise MicrosError(f"the device cache {self.path} is damaged; move it away and run "
                                  "'invoke scan' again") from err

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "devices": self.devices}, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def add(self, uid, fuid, host, port, **extra):
        """Record a node; the same hardware at a new address moves, an address now
        held by other hardware is given up by the old entry."""
        for old, dev in list(self.devices.items()):
            if old != uid and dev.get("host") == host and dev.get("port") == port:
                del self.devices[old]
        entry = dict(self.devices.get(uid, {}))
        entry.update({"fuid": fuid, "host": host, "port": int(port), "seen": now()}, **extra)
        self.devices[uid] = entry
        return entry

    def rows(self):
        """(uid, entry) sorted by name, then address."""
        return sorted(self.devices.items(), key=lambda kv: (kv[1].get("fuid") or "", kv[1].get("host", "")))

    def resolve(self, name):
        """(uid, entry) for a friendly name (devfid), a hardware id, or None when unknown.
        Two nodes with the same name are an error that says how to tell them apart."""
        if name in self.devices:
            return name, self.devices[name]
        hits = [(u, d) for u, d in self.devices.items() if d.get("fuid") == name]
        if not hits:
            hits = [(u, d) for u, d in self.devices.items() if (d.get("fuid") or "").lower() == name.lower()]
        if len(hits) > 1:
            where = ", ".join(f"{d['host']}:{d['port']} (uid {u})" for u, d in hits)
            raise MicrosError(f"{len(hits)} nodes are called {name!r}: {where}; use the uid or the address, "
                              "or give each node its own devfid")
        return hits[0] if hits else None

    def import_original(self, path):
        """Read the original's device_conn_cache.json; returns how many entries came in."""
        try:
            data = json.loads(Path(path).read_text())
        except OSError as err:
            raise MicrosError(f"cannot read {path} ({err.strerror or err})") from err
        except ValueError as err:
            raise MicrosError(f"{path} is not JSON; the original's cache is device_conn_cache.json") from err
        if not isinstance(data, dict):
            raise MicrosError(f"{path} is not the original's device cache ({{uid: [ip, mac, fuid]}})")
        n = 0
        for uid, row in data.items():
            row = row if isinstance(row, list) else [row]
            ip = row[0] if row else None
            try:
                ipaddress.ip_address(ip)
            except (TypeError, ValueError) as err:
                raise MicrosError(f"{path}: entry {uid!r} has no IP address ({ip!r}); fix or remove it") from err
            fuid = row[2] if len(row) > 2 and row[2] else None
            extra = {"mac": row[1]} if len(row) > 1 and row[1] else {}
            self.add(uid, fuid, ip, DEFAULT_PORT, imported=str(path), **extra)
            n += 1
        return n


def parse_address(text, port=DEFAULT_PORT):
    """'host' or 'host:port' -> (host, port) when text is an IP address, else None."""
    host, sep, p = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    host = host if sep else text
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    if sep:
        if not p.isdigit() or not 0 < int(p) < 65536:
            raise MicrosError(f"{text!r}: the port after ':' is a number 1..65535")
        port = int(p)
    return host, int(port)


def resolve(name, port=None, cache=None, mdns_timeout=1.5):
    """Where node `name` is: (host, port, uid-or-None). An address is taken as it is;
    a name is looked up in the cache, then as <name>.local over mDNS."""
    addr = parse_address(name, port or DEFAULT_PORT)
    if addr:
        return addr[0], addr[1], None
    cache = cache if cache is not None else Cache()
    hit = cache.resolve(name)
    if hit:
        uid, dev = hit
        return dev["host"], int(port or dev["port"]), uid
    from microsctl.fleet import mdns

    ip = mdns.resolve_host(name, mdns_timeout)
    if ip:
        return ip, int(port or DEFAULT_PORT), None
    raise MicrosError(f"no node called {name!r} in the device cache ({cache.path}) nor as {name}.local; "
                      "run 'invoke scan' or give its address")
