"""`invoke backup` / `invoke restore`: a node's settings archived on the host, and put back.

The node never shows a secret (conf mode masks stapwd and appwd), so a backup holds the
node's other settings as its `dump` gives them, plus the secrets this host knows (the
secrets layer: secrets.json, $MICROS_SECRETS, MICROS_STAPWD...) unless --no-secrets.
Every backup file is created readable by the user alone (0600), through a temp file and
a rename, in <data dir>/backups/<devfid>/<devfid>-<UTC time>.json.

Restore writes, in conf mode, each setting that differs from what the node has now, and
every secret the file holds; values the node writes itself (hwuid, nwmd) are left alone.
"""
import asyncio
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from microsctl import MicrosError
from microsctl.fleet import cache as devcache
from microsctl.fleet.aclient import AsyncShell, is_error
from microsctl.flashing import profiles, schema

MASK = "*****"


def backup_dir():
    return devcache.data_dir() / "backups"


def parse_dump(text):
    """`key: value` lines -> {key: typed value}; masked secrets left out."""
    params = schema.params()
    out = {}
    for line in text.splitlines():
        key, sep, val = line.partition(": ")
        if not sep or key not in params:
            continue
        p = params[key]
        if p.secret and val == MASK:
            continue
        if p.type is bool:
            out[key] = val == "True"
        elif p.type is int:
            out[key] = int(val)
        else:
            out[key] = val
    return out


async def _dump(host, port, timeout=5.0):
    async with await AsyncShell.connect(host, port, timeout) as sh:
        hello = await sh.cmd("hello")
        await sh.cmd("conf")
        text = await sh.cmd("dump")
        await sh.cmd("noconf")
    if is_error(text):
        raise MicrosError(f"the node at {host}:{port} did not list its settings: {text.strip()}")
    return hello, parse_dump(text)


def _write_private(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)  # a temp file left by an earlier failure had its own mode
    os.replace(tmp, path)


def backup(dev, secrets=True, cache=None, out_dir=None, env=None, files=None):
    """Archive one node's settings; returns (path, number of settings, secrets included)."""
    host, port, uid = devcache.resolve(dev, None, cache)
    hello, cfg = asyncio.run(_dump(host, port))
    fuid = cfg.get("devfid") or dev
    data = {"taken": datetime.now(timezone.utc).isoformat(timespec="seconds"), "devfid": fuid,
            "hwuid": cfg.get("hwuid", uid), "host": host, "port": port, "config": cfg}
    found = {}
    if secrets:
        found = profiles.find_secrets(files=files, env=env)
        if found:
            data["secrets"] = found
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = Path(out_dir or backup_dir()) / fuid / f"{fuid}-{stamp}.json"
    _write_private(path, data)
    return path, len(cfg), sorted(found)


def latest(dev, cache=None):
    """The newest backup of a node (by devfid, or the devfid its cache entry names)."""
    names = {dev}
    hit = (cache if cache is not None else devcache.Cache()).resolve(dev) if not devcache.parse_address(dev) else None
    if hit and hit[1].get("fuid"):
        names.add(hit[1]["fuid"])
    files = sorted(f for n in names for f in (backup_dir() / n).glob(f"{n}-*.json"))
    if not files:
        raise MicrosError(f"no backup of {dev} in {backup_dir()}: run 'invoke backup --dev {dev}' or give --from FILE")
    return files[-1]


def _line(key, val):
    if isinstance(val, bool) or isinstance(val, int):
        return f"{key} {val}"
    return f'{key} "{val}"'  # the node takes one pair of quotes off (conf.parse): exact for any string


async def _restore(host, port, cfg, secret_vals, timeout=5.0):
    params = schema.params()
    written, later, failed = [], [], []
    async with await AsyncShell.connect(host, port, timeout) as sh:
        await sh.cmd("conf")
        now = parse_dump(await sh.cmd("dump"))
        todo = [(k, v) for k, v in cfg.items() if k in params and not params[k].system and now.get(k) != v]
        todo += [(k, v) for k, v in secret_vals.items() if k in params and params[k].secret]
        for key, val in todo:
            reply = await sh.cmd(_line(key, val))
            if reply.startswith("Saved"):
                written.append(key)
                if "reboot" in reply:
                    later.append(key)
            else:
                failed.append(f"{key}: {reply.strip()}")
        await sh.cmd("noconf")
    return written, later, failed


def restore(dev, source=None, cache=None):
    """Write a backup back through conf mode; returns (file, written keys, keys needing a reboot)."""
    host, port, _ = devcache.resolve(dev, None, cache)
    path = Path(source) if source else latest(dev, cache)
    try:
        data = json.loads(path.read_text())
        cfg, secret_vals = dict(data["config"]), dict(data.get("secrets") or {})
    except OSError as err:
        raise MicrosError(f"cannot read {path} ({err.strerror or err})") from err
    except (ValueError, KeyError, TypeError) as err:
        raise MicrosError(f"{path} is not a micrOS backup (invoke backup writes them)") from err
    try:
        for k, v in {**cfg, **secret_vals}.items():
            schema.validate(k, v, system=True)
    except (ValueError, MicrosError) as err:
        raise MicrosError(f"{path}: {err}; nothing was written") from err
    written, later, failed = asyncio.run(_restore(host, port, cfg, secret_vals))
    if failed:
        raise MicrosError(f"restore of {dev} stopped short: {'; '.join(failed)} (written: {', '.join(written) or 'none'})")
    return path, written, later
