"""Application profiles: config_profiles/<name>.json, checked against the device schema."""
import json

from . import PROFILES, MicrosError, schema


def names():
    return sorted(p.stem for p in PROFILES.glob("*.json") if not p.name.endswith(".secrets.json"))


def load(name):
    """The profile as data: description, settings (validated), examples."""
    path = PROFILES / f"{name}.json"
    if not path.is_file():
        raise MicrosError(f"unknown profile {name!r}: valid profiles are {', '.join(names())}")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise MicrosError(f"profile {name}: {path.name} is not valid JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("settings", {}), dict):
        raise MicrosError(f"profile {name}: expected an object with a 'settings' object")
    try:
        schema.merge({}, data.get("settings", {}))
    except MicrosError as err:
        raise MicrosError(f"profile {name}: {err}") from err
    return {
        "name": name,
        "description": data.get("description", ""),
        "settings": data.get("settings", {}),
        "examples": list(data.get("examples", [])),
    }


def config(name, sets=None):
    """Full node config: defaults, then the profile, then per-device --set values."""
    cfg = schema.merge(schema.defaults(), load(name)["settings"])
    return schema.merge(cfg, schema.parse_sets(sets))
