"""Two `invoke shell` sessions at once keep both their lines (microsctl/node/history.py).

Each session is its own process (readline's history is per process), driven line by line."""
import json
import os
import subprocess
import sys

SESSION = r"""
import json, readline, sys
from microsctl.node.history import History
h = History(sys.argv[1])
print("ready", flush=True)
for cmd in sys.stdin:
    op, _, arg = cmd.rstrip("\n").partition(" ")
    if op == "add":
        h.add(arg)
    elif op == "save":
        print(json.dumps(h.save()), flush=True)
    elif op == "burst":  # n lines, a save after each
        for i in range(int(arg)):
            h.add("%s line %d" % (sys.argv[2], i))
            assert h.save() is None
        print("done", flush=True)
"""


class Session:
    def __init__(self, path, tag="s"):
        env = dict(os.environ, TERM="dumb")
        self.p = subprocess.Popen([sys.executable, "-c", SESSION, str(path), tag], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, env=env)
        assert self.p.stdout.readline().strip() == "ready"

    def send(self, line, answer=False):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip() if answer else None

    def close(self):
        self.p.stdin.close()
        assert self.p.wait(timeout=10) == 0


def lines(path):
    """The file as readline reads it back."""
    out = subprocess.run([sys.executable, "-c", "import json, readline, sys; readline.read_history_file(sys.argv[1]); "
                          "print(json.dumps([readline.get_history_item(i + 1) for i in "
                          "range(readline.get_current_history_length())]))", str(path)],
                         capture_output=True, text=True, env=dict(os.environ, TERM="dumb"), check=True)
    return json.loads(out.stdout)


def test_two_sessions_open_at_once_keep_each_others_lines(tmp_path):
    path = tmp_path / "state" / "shell_history"
    a, b = Session(path), Session(path)  # both read the (missing) file before either saves
    a.send("add system info")
    a.send("add light toggle")
    assert a.send("save", answer=True) == "null"
    b.send("add dimmer set_value 50")
    b.send("add stapwd hunter2")  # a secret: never recorded
    assert b.send("save", answer=True) == "null"
    a.send("add system heartbeat")
    assert a.send("save", answer=True) == "null"  # a's second save neither drops b's line nor repeats its own
    a.close()
    b.close()
    assert lines(path) == ["system info", "light toggle", "dimmer set_value 50", "system heartbeat"]
    assert sorted(p.name for p in path.parent.iterdir()) == [".shell_history.lock", "shell_history"]  # no .part left


def test_two_writers_saving_at_the_same_time_lose_no_line(tmp_path):
    path = tmp_path / "shell_history"
    a, b = Session(path, "a"), Session(path, "b")
    for s in (a, b):
        s.p.stdin.write("burst 60\n")
        s.p.stdin.flush()
    assert a.p.stdout.readline().strip() == b.p.stdout.readline().strip() == "done"
    a.close()
    b.close()
    got = lines(path)
    assert sorted(got) == sorted([f"{t} line {i}" for t in "ab" for i in range(60)])
    for t in "ab":  # each session's lines in its order
        assert [x for x in got if x.startswith(t)] == [f"{t} line {i}" for i in range(60)]


def test_the_merged_file_keeps_the_newest_length_lines(tmp_path):
    from microsctl.node.history import LENGTH

    path = tmp_path / "shell_history"
    s = Session(path, "a")
    s.p.stdin.write(f"burst {LENGTH}\n")  # another session's full history
    s.p.stdin.flush()
    assert s.p.stdout.readline().strip() == "done"
    s.close()
    b = Session(path)
    b.send("add system info")
    assert b.send("save", answer=True) == "null"
    b.close()
    got = lines(path)
    assert len(got) == LENGTH and got[0] == "a line 1" and got[-2:] == [f"a line {LENGTH - 1}", "system info"]
