"""The device's own config definition, used on the host.

The parameters, their types and ranges are defined once, in the device module
frozen/micros/conf.py. The host loads that very module (with a stand-in for
MicroPython's `micropython.const`) and validates with its functions, so host and
node can never disagree about a setting.
"""
import importlib
import sys
import types
from dataclasses import dataclass

from microsctl import FROZEN, MicrosError


def device_module(name):
    """Import frozen/micros/<name>.py under CPython, as the package `micros`.

    Only pure modules (no machine, no asyncio) load this way. The stand-ins stay
    registered: the host has no other `micros` or `micropython` module.
    """
    if "micropython" not in sys.modules:
        stub = types.ModuleType("micropython")
        stub.const = lambda x: x
        sys.modules["micropython"] = stub
    if "micros" not in sys.modules:
        pkg = types.ModuleType("micros")
        pkg.__path__ = [str(FROZEN / "micros")]
        sys.modules["micros"] = pkg
    return importlib.import_module(f"micros.{name}")


@dataclass(frozen=True)
class Param:
    key: str
    default: object
    reboot: bool
    secret: bool
    system: bool
    lo: int
    hi: int

    @property
    def type(self):
        return type(self.default)


def params():
    conf = device_module("conf")
    return {
        k: Param(k, d, bool(f & conf.REBOOT), bool(f & conf.SECRET), bool(f & conf.SYSTEM), lo, hi)
        for k, d, f, lo, hi in map(conf.spec, device_module("confw").keys())
    }


def defaults():
    return {k: p.default for k, p in params().items()}


def secrets():
    return {k for k, p in params().items() if p.secret}


def validate(key, value, system=False):
    """A typed, checked value for key (strings are parsed as the shell does)."""
    conf = device_module("conf")
    w = device_module("confw")  # the checks conf.set runs on the node
    try:
        row = conf.spec(key)
        if row[2] & conf.SYSTEM and not system:
            raise conf.ConfError(f"{key} is written by the node itself")
        if isinstance(value, str):
            value = w.parse(key, value)
        w._check(row, value)
        mod = w.hook(key)
        if mod:
            device_module(mod).check(key, value)
    except conf.ConfError as err:
        raise MicrosError(f"setting {err}") from err
    return value


def merge(base, updates, system=False):
    """base updated with validated updates; unknown keys and bad values refused."""
    out = dict(base)
    for k, v in updates.items():
        out[k] = validate(k, v, system=system)
    return out


def parse_sets(pairs):
    """['key=value', ...] from the command line -> {key: 'value'}."""
    out = {}
    for item in pairs or ():
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise MicrosError(f"--set takes KEY=VALUE, not {item!r}")
        out[key.strip()] = val
    return out
