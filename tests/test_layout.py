"""The host package is laid out by job, and its subpackages import one way only:
firmware <- flashing <- node <- fleet <- bench (and emulator, used by tests and bench).
The old circle build -> sim -> flash -> build must not come back."""
import ast
from pathlib import Path

from microsctl import ROOT

PKG = ROOT / "microsctl"
# what each subpackage may import from its siblings
ALLOWED = {
    "firmware": set(),
    "emulator": set(),
    "flashing": {"firmware"},
    "node": {"firmware", "flashing"},
    "fleet": {"firmware", "flashing", "node"},
    "mqtt": {"firmware", "flashing", "node"},
    "bench": {"firmware", "flashing", "node", "fleet", "emulator", "mqtt"},
}


def _imports(path):
    """microsctl subpackages a module imports (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: resolve against the module's package
                parts = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                mod = ".".join(parts + tuple(node.module.split(".")))
            else:
                mod = node.module
            parts = mod.split(".")
            if parts[0] == "microsctl" and len(parts) > 1:
                found.add(parts[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "microsctl" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_every_subpackage_is_known():
    subs = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert subs == set(ALLOWED)


def test_subpackages_import_one_way():
    bad = []
    for sub, allowed in ALLOWED.items():
        for path in (PKG / sub).rglob("*.py"):
            wrong = _imports(path) & (set(ALLOWED) - allowed - {sub})
            if wrong:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "\n".join(bad)


def test_no_flat_modules_left():
    """Shared helpers only at the top: the package root, the CLI and the command runner."""
    flat = {p.name for p in PKG.glob("*.py")}
    assert flat == {"__init__.py", "cli.py", "run.py"}
