"""Run external commands: argv lists, printed before they run."""
import shlex
import subprocess
import sys

from . import MicrosError


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
