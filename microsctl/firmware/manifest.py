"""A host-side evaluator of MicroPython's manifest language.

It runs a manifest.py the way the firmware build does (`include`, `freeze`,
`module`, `package`, `require`, `options`, `metadata`, `$(VAR)` paths) and
records what would be frozen, so the tests can check, without a MicroPython
tree or a Docker engine, that every path a manifest names exists and that the
frozen set is exactly the intended one.

Path variables whose tree is not on this host (the MicroPython checkout inside
the build container: `$(MPY_DIR)`, `$(PORT_DIR)`, ...) are given as None: what
a manifest takes from there is recorded in `external`, not evaluated.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from microsctl import ROOT, MicrosError

_VAR = re.compile(r"\$\((\w+)\)")


@dataclass(frozen=True)
class Frozen:
    """One file to freeze: source on the host, name inside the firmware, mpy-cross -O level."""

    src: Path
    target: str
    opt: "int | None"
    manifest: Path
    line: int


@dataclass(frozen=True)
class External:
    """A call whose path lies in a tree this host does not have."""

    call: str
    path: str
    manifest: Path
    line: int


class Options:
    """`options` inside a manifest: include() keywords, None when not given."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __getattr__(self, name):  # only called for names not set
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def defaults(self, **kw):
        for k, v in kw.items():
            self.__dict__.setdefault(k, v)


@dataclass
class Result:
    frozen: list = field(default_factory=list)
    external: list = field(default_factory=list)
    requires: list = field(default_factory=list)
    included: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)

    def targets(self):
        return [f.target for f in self.frozen]

    def opt_levels(self):
        return {f.target: f.opt for f in self.frozen}


class Evaluator:
    def __init__(self, variables):
        # name -> host path, or None for a tree that is only in the build container
        self.vars = dict(variables)
        self.result = Result()
        self._stack = []  # (manifest path, Options)

    # -- paths --
    def _here(self):
        return self._stack[-1][0]

    def _line(self):
        """Line of the current manifest that made the call being handled."""
        import sys

        f = sys._getframe(1)
        want = str(self._here())
        while f is not None:
            if f.f_code.co_filename == want:
                return f.f_lineno
            f = f.f_back
        return 0

    def _fail(self, msg):
        raise MicrosError(f"{self._here()}:{self._line()}: {msg}")

    def _expand(self, path):
        """Expand $(VAR); returns (Path, None) or (None, text) for an external tree."""
        path = str(path)
        external = False

        def sub(m):
            nonlocal external
            name = m.group(1)
            if name not in self.vars:
                self._fail(f"unknown path variable $({name}): known ones are "
                           + ", ".join(f"$({v})" for v in self.vars))
            if self.vars[name] is None:
                external = True
                return m.group(0)
            return str(self.vars[name])

        text = _VAR.sub(sub, path)
        if external:
            return None, text
        p = Path(text)
        if not p.is_absolute():
            p = self._here().parent / p
        return Path(os.path.normpath(p)), None

    def _must_exist(self, p, what):
        if not p.exists():
            self._fail(f"{what} {p} does not exist")

    # -- manifest functions --
    def include(self, manifest, **kw):
        if isinstance(manifest, (list, tuple)):
            for m in manifest:
                self.include(m, **kw)
            return
        p, ext = self._expand(manifest)
        if ext is not None:
            self.result.external.append(External("include", ext, self._here(), self._line()))
            return
        if p.is_dir():
            p = p / "manifest.py"
        self._must_exist(p, "included manifest")
        self.run(p, Options(**kw))

    def require(self, name, library=None, **kw):
        self.result.requires.append(name)
        self.result.external.append(External("require", name, self._here(), self._line()))

    def add_library(self, library, path, prepend=False):
        """A library require() searches (the unix variants add micropython-lib's unix-ffi)."""
        p, ext = self._expand(path)
        self.result.external.append(External("add_library", ext or str(p), self._here(), self._line()))

    def metadata(self, description=None, version=None, license=None, author=None):
        self.result.metadata[str(self._here())] = {
            k: v for k, v in (("description", description), ("version", version),
                              ("license", license), ("author", author)) if v is not None
        }

    def _add(self, src, target, opt):
        if not src.is_file():
            self._fail(f"file to freeze {src} does not exist")
        if src.suffix not in (".py", ".mpy"):
            self._fail(f"{src} is neither .py nor .mpy")
        if opt is not None and opt not in (0, 1, 2, 3):
            self._fail(f"opt must be 0..3, not {opt!r}")
        target = target.replace(os.sep, "/")
        if target in self.result.targets():
            self._fail(f"{target} is frozen twice")
        self.result.frozen.append(Frozen(src, target, opt, self._here(), self._line()))

    def module(self, module_path, base_path=".", opt=None):
        base, ext = self._expand(base_path)
        if ext is not None:
            self.result.external.append(External("module", f"{ext}/{module_path}", self._here(), self._line()))
            return
        if not str(module_path).endswith((".py", ".mpy")):
            self._fail(f"module() takes a .py file, not {module_path}")
        self._add(base / module_path, str(module_path), opt)

    def package(self, package_path, files=None, base_path=".", opt=None):
        base, ext = self._expand(base_path)
        if ext is not None:
            self.result.external.append(External("package", f"{ext}/{package_path}", self._here(), self._line()))
            return
        root = base / package_path
        if not root.is_dir():
            self._fail(f"package directory {root} does not exist")
        # like the firmware build, a walk takes every .py, a manifest.py inside included:
        # a package that keeps its manifest inside lists its files
        names = files if files is not None else sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))
        for name in names:
            self._add(root / name, f"{package_path}/{name}", opt)

    def freeze(self, path, script=None, opt=None):
        root, ext = self._expand(path)
        if ext is not None:
            self.result.external.append(External("freeze", ext, self._here(), self._line()))
            return
        if not root.is_dir():
            self._fail(f"freeze directory {root} does not exist")
        if script is None:
            names = sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))
        elif isinstance(script, str):
            names = [script]
        else:
            names = list(script)
        for name in names:
            self._add(root / name, name, opt)

    # -- running --
    def run(self, path, options=None):
        path = Path(path).resolve()
        if any(path == p for p, _ in self._stack):
            self._fail(f"{path} includes itself")
        self._stack.append((path, options or Options()))
        self.result.included.append(path)
        env = {
            "__file__": str(path),
            "include": self.include,
            "require": self.require,
            "add_library": self.add_library,
            "module": self.module,
            "package": self.package,
            "freeze": self.freeze,
            "metadata": self.metadata,
            "options": self._stack[-1][1],
        }
        try:
            code = compile(path.read_text(), str(path), "exec")
            exec(code, env)  # a manifest is build code of this repository
        except SyntaxError as err:
            raise MicrosError(f"{path}:{err.lineno}: {err.msg}") from err
        finally:
            self._stack.pop()
        return self.result


def variables(board=None, mpy_dir=None):
    """The path variables of a board's manifest on this host.

    MICROS_DIR is this repository. The MicroPython tree, and with it PORT_DIR
    and BOARD_DIR (the upstream board the firmware is built from), exists only
    inside the build container unless `mpy_dir` is given.
    """
    mpy = Path(mpy_dir) if mpy_dir else None
    port = mpy / "ports" / board.port if mpy and board else None
    return {
        "MICROS_DIR": ROOT,
        "MPY_DIR": mpy,
        "MPY_LIB_DIR": mpy / "lib" / "micropython-lib" if mpy else None,
        "PORT_DIR": port,
        "BOARD_DIR": port / "boards" / board.mpy_board if port else None,
    }


def evaluate(path, variables_=None, **options):
    """Evaluate one manifest file; returns a Result."""
    ev = Evaluator(variables_ if variables_ is not None else variables())
    return ev.run(path, Options(**options))


def for_board(board):
    """Evaluate boards/<NAME>/manifest.py with the board's path variables. The virtual board's
    firmware is a ROMFS image (invoke build --board sim): its manifest gets romfs=True."""
    path = board.dir / "manifest.py"
    if not path.exists():
        raise MicrosError(f"{path} is missing: every board needs a manifest")
    return evaluate(path, variables(board), **({"romfs": True} if board.is_virtual else {}))
