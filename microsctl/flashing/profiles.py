"""Application profiles and the settings of one node.

A profile is data: config_profiles/<name>.json holds {description, settings,
examples[, modules]}, checked against the device's own parameter definition
(schema.py). The settings a node gets are layered, later wins:

    defaults  <  profile  <  device file / --set KEY=VALUE  <  secrets

Secrets (the SECRET-flagged parameters: stapwd, appwd, authkey) never live in a profile:
they come from an ignored secrets file (secrets.json, config_profiles/<name>.secrets.json,
or the file named by MICROS_SECRETS) or the environment (MICROS_STAPWD, ...).
A missing secret is asked for on a terminal, an error otherwise; no function
here prints or logs a secret value. authkey, the shell's key, is required like
the others unless the profile turns `auth` off; the host tools read it from the
same layer to answer the node's challenge (authkey()).
"""
import contextlib
import getpass
import json
import os
import sys
from pathlib import Path

from microsctl import FROZEN, PORTS, PROFILES, ROOT, MicrosError
from microsctl.flashing import schema

MASK = "*****"
SECRETS_FILE = ROOT / "secrets.json"  # in .gitignore
# Where the non-frozen Load Modules a profile names (LM_<name>.py) are looked up.
MODULE_DIRS = (ROOT / "modules", PORTS / "unix")


def names():
    return sorted(p.stem for p in PROFILES.glob("*.json") if not p.name.endswith(".secrets.json"))


def _read_json(path, what):
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise MicrosError(f"cannot read {what} {path}: {err.strerror}") from err
    except ValueError as err:
        raise MicrosError(f"{what} {path} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise MicrosError(f"{what} {path}: expected a JSON object of settings")
    return data


def load(name):
    """The profile as data: description, settings (validated), examples, modules."""
    path = PROFILES / f"{name}.json"
    if not path.is_file():
        raise MicrosError(f"unknown profile {name!r}: valid profiles are {', '.join(names())}")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise MicrosError(f"profile {name}: {path.name} is not valid JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("settings", {}), dict):
        raise MicrosError(f"profile {name}: expected an object with a 'settings' object")
    settings = data.get("settings", {})
    secret = sorted(schema.secrets() & set(settings))
    if secret:
        raise MicrosError(
            f"profile {name}: {', '.join(secret)} is a secret; remove it from {path.name} "
            f"and put it in secrets.json or {env_name(secret[0])}"
        )
    try:
        schema.merge({}, settings)
    except MicrosError as err:
        raise MicrosError(f"profile {name}: {err}") from err
    examples = data.get("examples", [])
    modules = data.get("modules", [])
    if not all(isinstance(x, str) for x in examples) or not all(isinstance(x, str) for x in modules):
        raise MicrosError(f"profile {name}: 'examples' and 'modules' are lists of strings")
    for mod in modules:
        module_source(mod)  # unknown module: refused here, before anything is built
    return {
        "name": name,
        "description": data.get("description", ""),
        "settings": settings,
        "examples": list(examples),
        "modules": list(modules),
    }


def config(name, sets=None):
    """Full node config without secrets: defaults, then the profile, then per-device --set values."""
    cfg = schema.merge(schema.defaults(), load(name)["settings"])
    return schema.merge(cfg, schema.parse_sets(sets))


def module_source(mod):
    """LM_<mod>.py for a profile's `modules` entry: None when it is frozen in the core."""
    if (FROZEN / "micros" / f"LM_{mod}.py").is_file():
        return None
    for d in MODULE_DIRS:
        p = d / f"LM_{mod}.py"
        if p.is_file():
            return p
    raise MicrosError(f"Load Module {mod!r} not found: put LM_{mod}.py in modules/ or remove it from the profile")


# -- secrets --------------------------------------------------------------

def env_name(key):
    return f"MICROS_{key.upper()}"


def secret_files(profile=None):
    """The secrets files read, in order (later wins); MICROS_SECRETS names an extra one."""
    files = [SECRETS_FILE]
    if profile:
        files.append(PROFILES / f"{profile}.secrets.json")
    if os.environ.get("MICROS_SECRETS"):
        files.append(Path(os.environ["MICROS_SECRETS"]))
    return files


def find_secrets(profile=None, files=None, env=None):
    """{key: value} of the secrets found in files and environment (env wins)."""
    env = os.environ if env is None else env
    keys = schema.secrets()
    found = {}
    for f in secret_files(profile) if files is None else files:
        if Path(f).is_file():
            data = _read_json(f, "secrets file")
            unknown = sorted(set(data) - keys)
            if unknown:
                raise MicrosError(f"secrets file {f}: {', '.join(unknown)} is not a secret; it belongs in a profile or --set")
            found.update(data)
    for k in keys:
        if env.get(env_name(k)) is not None:
            found[k] = env[env_name(k)]
    for k, v in found.items():
        try:
            schema.validate(k, v)
        except MicrosError as err:
            # the message names the key and the rule, never the value
            raise MicrosError(f"secret {err} (fix it in the secrets file or {env_name(k)})") from None
    return found


def authkey(profile=None, files=None, env=None):
    """The shell key from the secrets layer (MICROS_AUTHKEY, else the secrets files), or None."""
    return find_secrets(profile, files, env).get("authkey")


# The profile a task's --profile named: its config_profiles/<profile>.secrets.json also
# answers a node's challenge, for every connection the task opens, from any thread (the
# fleet's worker threads too: a plain module value, not a contextvar, which a
# ThreadPoolExecutor would not carry). Set only through key_profile().
_key_profile = None


@contextlib.contextmanager
def key_profile(profile):
    """Within: the shell key is looked up with this profile's secrets file too (None: as before).
    An unknown profile is an error naming the valid ones."""
    global _key_profile
    if profile:
        load(profile)
    before, _key_profile = _key_profile, profile or None
    try:
        yield
    finally:
        _key_profile = before


def shell_key(profile=None):
    """(the key that answers a node's challenge or None, where it was looked for): MICROS_AUTHKEY,
    secrets.json and, with a profile (given, else the task's --profile), its secrets file."""
    profile = profile or _key_profile
    where = f"secrets.json or config_profiles/{profile}.secrets.json" if profile else "secrets.json"
    return authkey(profile), where


def ask_secret(key, stdin=None):
    """Ask for a missing secret on a terminal; an error without one."""
    stdin = stdin or sys.stdin
    if not (stdin and stdin.isatty()):
        raise MicrosError(f"secret {key} is missing: set {env_name(key)} or add it to {SECRETS_FILE.name}")
    return getpass.getpass(f"{key} (not echoed): ")


def _per_device(sets, device_file):
    per_device = {}
    if device_file:
        per_device.update(_read_json(device_file, "device file"))
    per_device.update(schema.parse_sets(sets))
    return per_device


def named(profile, sets=None, device_file=None):
    """The keys the profile, the device file and --set name (what provisioning does not carry forward)."""
    return set(load(profile)["settings"]) | set(_per_device(sets, device_file))


def settings(profile, sets=None, device_file=None, secrets=True, ask=ask_secret, files=None, env=None, node=None):
    """The node's full config: defaults < node < profile < device file < --set < secrets.

    node: the values kept from the node's current config (provisioning carries them forward;
    checked by the caller); a secret found there is not asked for.
    secrets=True: every secret is required (found, kept from the node, or asked for by `ask`);
    secrets="found": the secrets found are used, the others keep their defaults (virtual board);
    secrets=False: secrets stay at their defaults (e.g. for a listing).
    """
    node = node or {}
    cfg = schema.merge({**schema.defaults(), **node}, load(profile)["settings"])
    per_device = _per_device(sets, device_file)
    leaked = sorted(schema.secrets() & set(per_device))
    if leaked:
        raise MicrosError(
            f"{leaked[0]} is a secret: not on the command line or in a device file; "
            f"use {env_name(leaked[0])} or {SECRETS_FILE.name}"
        )
    cfg = schema.merge(cfg, per_device)
    if secrets:
        found = find_secrets(profile, files, env)
        for k in sorted(schema.secrets()):
            if k == "authkey" and cfg.get("auth") is False:
                continue  # the profile turned the shell's authentication off: no key needed
            if k == "mqttpwd":  # optional (a broker may take no password): used when found, never asked for
                continue
            if k not in found and k not in node and secrets != "found":
                val = ask(k)
                try:
                    found[k] = schema.validate(k, val)
                except MicrosError as err:
                    raise MicrosError(f"secret {err}") from None
        cfg.update(found)
    return cfg


def masked(cfg):
    """cfg with every secret replaced by a mask: the only form that may be shown."""
    keys = schema.secrets()
    return {k: (MASK if k in keys else v) for k, v in cfg.items()}


def notes(cfg):
    """Settings that are valid one by one but do not work together, as the node will say."""
    out = []
    if cfg.get("cron") and not cfg.get("timirq"):
        out.append("cron is on but timirq is off: the node will not arm cron (set timirq=True)")
    for key in ("timirq", "extirq"):
        if cfg.get(key) and cfg.get(key + "cbf") == "n/a":
            out.append(f"{key} is on but {key}cbf is n/a: nothing to call")
    return out


def describe(name, sets=None, device_file=None, env=None, files=None):
    """Text for `invoke profiles NAME`: the profile and its merged settings, secrets masked."""
    prof = load(name)
    cfg = settings(name, sets, device_file, secrets=False)
    found = find_secrets(name, files, env)
    src = {k: "profile" for k in prof["settings"]}
    if device_file:
        src.update((k, "device file") for k in _read_json(device_file, "device file"))
    src.update((k, "--set") for k in schema.parse_sets(sets))
    lines = [f"{name}: {prof['description']}", ""]
    width = max(map(len, cfg))
    for k, v in masked(cfg).items():
        if k in schema.secrets():
            how = "set" if k in found else f"missing: {env_name(k)} or {SECRETS_FILE.name}"
            if k == "authkey" and cfg.get("auth") is False:
                how = "not needed: the profile turns auth off"
            lines.append(f"  {k:<{width}}  {MASK}  ({how})")
            continue
        origin = src.get(k, "")
        lines.append(f"  {k:<{width}}  {json.dumps(v)}" + (f"  ({origin})" if origin else ""))
    if prof["modules"]:
        lines += ["", "  Load Modules added to the filesystem: " + ", ".join(prof["modules"])]
    lines += [f"  note: {n}" for n in notes(cfg)]
    if prof["examples"]:
        lines += ["", "  example commands:"] + [f"    {ex}" for ex in prof["examples"]]
    return "\n".join(lines)


def table():
    """`invoke profiles`: column headers and one row per profile."""
    rows = []
    for n in names():
        try:
            rows.append((n, load(n)["description"]))
        except MicrosError as err:
            rows.append((n, f"BROKEN: {err}"))
    return ("Profile", "Description"), rows
