"""The interactive shell's line history, kept across sessions in the user's state folder.

GNU readline (or libedit) does the editing; lines are added by hand (auto-history off)
so a line that names a secret setting (stapwd, appwd: "stapwd VALUE" or "stapwd:VALUE"
in conf mode) is never recorded. Sessions run side by side: each one's save merges
its new lines into the file as it is then, under a lock (filelock), and replaces it whole
(temp file, then rename), so no session's lines are lost and no reader sees half a file.
"""
import os
import re
from pathlib import Path

from microsctl.flashing import schema

LENGTH = 1000  # lines kept


def default_path():
    import platformdirs

    return platformdirs.user_state_path("micros") / "shell_history"


def names_secret(line, secrets):
    """True if the line mentions a secret setting (stapwd, appwd, ...) as a word."""
    return bool(secrets & set(re.split(r"[\s:]+", line.strip())))


class History:
    """History for input(); a no-op where Python has no readline (Windows)."""

    def __init__(self, path=None):
        self.path = Path(path) if path else default_path()
        self.secrets = schema.secrets()
        try:
            import readline
        except ImportError:
            readline = None
        self.rl = readline
        self.new = []  # this session's lines, merged into the file at save()
        if readline:
            readline.set_auto_history(False)
            readline.clear_history()
            readline.set_history_length(LENGTH)
            try:
                readline.read_history_file(self.path)
            except OSError:  # none yet, or unreadable: start empty
                pass

    def add(self, line):
        if self.rl and line.strip() and not names_secret(line, self.secrets):
            self.rl.add_history(line)
            self.new.append(line)

    def save(self):
        """Write the file; returns None, or why it could not be written (the shell goes on)."""
        if not self.rl:
            return None
        from filelock import FileLock, Timeout

        rl = self.rl
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(self.path.with_name(f".{self.path.name}.lock"), timeout=10):
                rl.clear_history()  # the file as the other sessions left it, then this one's lines
                try:
                    rl.read_history_file(self.path)
                except OSError:  # none yet
                    pass
                for line in self.new:
                    rl.add_history(line)
                rl.write_history_file(tmp)  # the last LENGTH lines (set_history_length)
                os.replace(tmp, self.path)
            self.new = []
        except (OSError, Timeout) as err:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return f"shell history not saved to {self.path}: {getattr(err, 'strerror', None) or err}"
        return None
