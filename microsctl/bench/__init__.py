"""`invoke bench`: speed and memory figures, printed and recorded in docs/benchmarks.md.

Each section is a function in a module of this package returning Markdown text;
the file keeps one block per section between markers, so sections can be rerun
alone (`invoke bench --only shell`) without losing the others.
"""
import importlib
import re
import time
from datetime import date

from microsctl import ROOT, MicrosError

DOC = ROOT / "docs" / "benchmarks.md"

# name -> "module:function"
SECTIONS = {
    "shell": "shell:shell",
    "heap": "shell:heap",
    "sched": "sched:sched",
    "flash": "flash:flash",
    "forms": "build:forms",
    "fleet": "fleet:fleet",
    "auth": "auth:auth",
    "update": "update:update",
    "mqtt": "mqtt:mqtt",
    "robustness": "robust:robustness",
    "frozen": "frozen:frozen",
}

HEADER = """# Benchmarks

Written by `invoke bench` (`invoke bench --only NAME` reruns one section). Ratios compare
runs made in the same process on the same machine, so they hold on a noisy shared machine
better than the absolute figures do.
"""


class Skipped(Exception):
    """A section that cannot run here (say why): printed, nothing recorded, the run goes on."""


def _block(name, text):
    return f"<!-- bench:{name} -->\n{text.rstrip()}\n<!-- /bench:{name} -->"


def record(name, text, doc=DOC):
    """Replace (or add) one section's block in the benchmarks document."""
    old = doc.read_text() if doc.exists() else HEADER
    block = _block(name, text)
    pat = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    new = pat.sub(lambda m: block, old) if pat.search(old) else old.rstrip() + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(new)


def run(only=None, quick=False):
    names = [only] if only else list(SECTIONS)
    for name in names:
        if name not in SECTIONS:
            raise MicrosError(f"unknown benchmark {name!r}: valid ones are {', '.join(SECTIONS)}")
    recorded = False
    for name in names:
        mod, fn = SECTIONS[name].split(":")
        func = getattr(importlib.import_module(f"{__package__}.{mod}"), fn)
        print(f"[bench] {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            text = func(quick=quick)
        except Skipped as why:  # the figures recorded before stay as they are
            print(f"[bench] {name} skipped: {why}", flush=True)
            continue
        key = name
        if isinstance(text, tuple):  # a section that records under its own name (frozen-32, ...)
            key, text = text
        text = f"## {key}\n\n_{date.today().isoformat()}, {time.monotonic() - t0:.0f} s_\n\n{text.rstrip()}\n"
        print(text, flush=True)
        record(key, text, DOC)  # DOC read now: tests point it elsewhere
        recorded = True
    if recorded:
        print(f"[bench] recorded in {DOC.relative_to(ROOT) if DOC.is_relative_to(ROOT) else DOC}")
