"""File updates over the shell (frozen/micros/ota.py, microsctl/node/ota.py) on virtual nodes:
the real MicroPython unix port runs the node, its filesystem is a folder (littlefs on a board;
the staging and renames are the same os calls, rename over an existing file as
lib/littlefs/lfs2.c lfs2_rename does it).

The old files must keep running whenever an update does not complete: a connection cut
halfway, the node killed during a file's write, a wrong sha256, a file missing at commit.
"""
import base64
import hashlib
import signal
import socket

import pytest

from microsctl import MicrosError
from microsctl.node import ota
from microsctl.node.client import Shell

KEY = "ota-shell-key-1"
OLD = "def hello():\n    return 'old LM'\n"
NEW = "def hello():\n    return 'new LM'\n"


@pytest.fixture
def mk(keyed):
    """Virtual nodes with a shell key; the host's Shell answers their challenge (MICROS_AUTHKEY)."""
    return keyed(KEY)


@pytest.fixture
def lm(tmp_path):
    """A user Load Module, version NEW, on the host; version OLD on the node (as LM_mine.py)."""
    src = tmp_path / "src" / "LM_mine.py"
    src.parent.mkdir()
    src.write_text(NEW)
    return src


def _node_with_old(mk):
    n = mk(start=False)
    (n.fs / "LM_mine.py").write_text(OLD)
    n.start()
    with Shell(n.port) as sh:
        assert sh.cmd("mine hello") == "old LM"
    return n


def _payload(size=5000):
    data = bytes(range(256)) * (size // 256 + 1)
    return data[:size]


def test_ota_replaces_an_lm_restarts_and_runs_it(mk, lm):
    n = _node_with_old(mk)
    files = ota.collect([lm])
    assert list(files) == ["LM_mine.mpy"] and files["LM_mine.mpy"][:1] == b"M"  # an .mpy
    boots = n.boots
    res = ota.push(files, n.port)
    assert n.boots == boots + 1  # the node restarted on its own after the commit
    with Shell(n.port) as sh:
        assert sh.cmd("mine hello") == "new LM"
    assert not (n.fs / "LM_mine.py").exists()  # the .py would shadow the new .mpy
    assert not (n.fs / ".ota").exists()
    assert res["files"] == ["LM_mine.mpy"]


def test_several_files_in_chunks(mk):
    n = mk()
    files = {"data.bin": _payload(5000), "profile.json": b'{"a": 1}'}
    ota.push(files, n.port)
    assert (n.fs / "data.bin").read_bytes() == files["data.bin"]
    assert (n.fs / "profile.json").read_bytes() == files["profile.json"]


def _raw_update(port, name, data, stop_after, sha=None):
    """Drive the protocol by hand; stop after `stop_after` data lines (None: all)."""
    sh = Shell(port)
    assert sh.cmd("ota begin").startswith("ota ready ")
    assert sh.cmd(f"ota file {name} {len(data)} {sha or hashlib.sha256(data).hexdigest()}") == "ok"
    for i, off in enumerate(range(0, len(data), 512)):
        if stop_after is not None and i == stop_after:
            return sh
        assert sh.cmd("ota data " + base64.b64encode(data[off : off + 512]).decode()) == "ok"
    return sh


def test_connection_cut_halfway_keeps_the_old_files(mk, lm):
    n = _node_with_old(mk)
    new = ota.collect([lm])["LM_mine.mpy"] + _payload(3000)  # several lines
    sh = _raw_update(n.port, "LM_mine.mpy", new, stop_after=3)
    sh.sock.shutdown(socket.SHUT_RDWR)  # the link drops halfway
    sh.close()
    with Shell(n.port) as sh2:
        assert sh2.cmd("mine hello") == "old LM"
        # the cut session was aborted: its staging is gone and a new update may start
        assert not (n.fs / ".ota").exists()
        assert sh2.cmd("ota begin").startswith("ota ready ")
        sh2.cmd("ota abort")
    assert (n.fs / "LM_mine.py").read_text() == OLD and not (n.fs / "LM_mine.mpy").exists()


def test_node_killed_during_the_write_keeps_the_old_files(mk, lm):
    n = _node_with_old(mk)
    new = _payload(4000)
    sh = _raw_update(n.port, "LM_mine.mpy", new, stop_after=4)
    assert (n.fs / ".ota" / "LM_mine.mpy.part").exists()  # half written when the power goes
    n.proc.send_signal(signal.SIGKILL)
    sh.close()
    n.stop()  # a killed node stays down: power it on again
    n.start()
    with Shell(n.port) as sh2:
        assert sh2.cmd("mine hello") == "old LM"
    assert not (n.fs / ".ota").exists()  # boot discarded the unfinished update
    assert "ota: discarded an unfinished update" in n.log.read_text()


def test_wrong_sha256_is_refused_and_nothing_changes(mk, lm):
    n = _node_with_old(mk)
    new = ota.collect([lm])["LM_mine.mpy"]
    sh = _raw_update(n.port, "LM_mine.mpy", new, None, sha="00" * 32)
    reply = sh.cmd("ota end")
    assert reply == "Error: LM_mine.mpy: sha256 mismatch"
    assert sh.cmd("ota commit 1") == "Error: no update: send ota begin first"
    assert sh.cmd("mine hello") == "old LM"
    sh.close()
    assert not (n.fs / ".ota").exists() and not (n.fs / "LM_mine.mpy").exists()


def test_commit_with_a_file_missing_is_refused(mk):
    n = mk()
    with Shell(n.port) as sh:
        sh.cmd("ota begin")
        sh.cmd(f"ota file a.bin 3 {hashlib.sha256(b'abc').hexdigest()}")
        sh.cmd("ota data " + base64.b64encode(b"abc").decode())
        assert sh.cmd("ota end") == "ok"
        assert sh.cmd("ota commit 2") == "Error: 1 files arrived, not 2"
    assert not (n.fs / "a.bin").exists()


def test_reset_during_the_commit_is_finished_at_boot(mk):
    """The node reset after .ota/.commit was written, one file moved, one not: boot moves the rest."""
    n = mk(start=False)
    (n.fs / "LM_mine.py").write_text(OLD)
    (n.fs / ".ota").mkdir()
    (n.fs / ".ota" / "b.txt").write_bytes(b"B2")
    (n.fs / "a.txt").write_bytes(b"A2")  # already moved before the reset
    (n.fs / ".ota" / ".commit").write_text("a.txt\nb.txt\n")
    n.start()
    assert (n.fs / "b.txt").read_bytes() == b"B2" and (n.fs / "a.txt").read_bytes() == b"A2"
    assert not (n.fs / ".ota").exists()
    assert "ota: finished an interrupted commit" in n.log.read_text()


def test_a_second_client_cannot_interleave(mk):
    n = mk()
    with Shell(n.port) as a, Shell(n.port) as b:
        assert a.cmd("ota begin").startswith("ota ready")
        assert b.cmd("ota begin") == "Error: another client is updating this node"
        assert a.cmd("ota abort") == "ota aborted"


@pytest.mark.parametrize("name", ["../boot.py", ".ota", "a/b", "x" * 49])
def test_bad_names_are_refused(mk, name):
    n = mk()
    with Shell(n.port) as sh:
        sh.cmd("ota begin")
        assert sh.cmd(f"ota file {name} 1 {'00' * 32}") == "Error: bad file name"


def test_tool_reports_a_refusal_in_one_line(mk, tmp_path):
    n = mk()
    with Shell(n.port) as other:
        other.cmd("ota begin")
        with pytest.raises(MicrosError, match="^the node refused the update: another client is updating this node$"):
            ota.push({"a.txt": b"x"}, n.port)


def test_ota_on_a_littlefs_flash_image(mk, make_node, lm, tmp_path):
    """The node's filesystem as on a board: littlefs (vfs.VfsLfs2) in the flash image, where
    rename over an existing file is lfs2_rename's (lib/littlefs/lfs2.c); the core runs from
    the ROMFS image in the image's firmware region, put there by invoke update."""
    from microsctl.firmware import boards
    from microsctl.flashing import geometry
    from tests.flashkit import mount_files

    from microsctl.firmware import build
    from microsctl.flashing import update

    img = tmp_path / "flash.img"
    n = make_node(flash=img, sets=["devfid=lfs01"], start=False)  # the key from MICROS_AUTHKEY (mk)
    # the core this tree builds, into the image's firmware region, the settings kept (invoke update)
    update.update(boards.get("sim"), img, firmware=build.build_sim(boards.get("sim")), backup_to=tmp_path / "bk")
    n.start()
    with Shell(n.port) as sh:
        assert sh.prompt == "lfs01 $ "
    ota.push({"LM_mine.mpy": ota.collect([lm])["LM_mine.mpy"], "notes.txt": b"v1"}, n.port)
    ota.push({"notes.txt": b"v2"}, n.port)  # replaces an existing file
    with Shell(n.port) as sh:
        assert sh.cmd("mine hello") == "new LM"
    n.stop()
    fs = geometry.for_image(boards.get("sim"), img).filesystem
    files = mount_files(img, fs.offset, fs)
    assert files["notes.txt"] == "v2" and "LM_mine.mpy" in str(files.keys())
    assert not any(k.startswith(".ota") for k in files)


def test_settings_go_with_the_files_all_or_nothing(mk, lm):
    n = _node_with_old(mk)
    res = ota.push(ota.collect([lm]), n.port, settings={"devfid": "otaset01", "stapwd": "new-secret-1"})
    assert res["settings"] == ["devfid", "stapwd"]
    with Shell(n.port) as sh:
        assert sh.prompt == "otaset01 $ " and sh.cmd("mine hello") == "new LM"
    cfg = n.config()
    assert cfg["devfid"] == "otaset01" and cfg["stapwd"] == "new-secret-1"


def test_a_bad_setting_aborts_the_whole_update(mk, lm):
    n = _node_with_old(mk)
    with Shell(n.port) as sh:
        sh.cmd("ota begin")
        mpy = ota.collect([lm])["LM_mine.mpy"]
        sh.cmd(f"ota file LM_mine.mpy {len(mpy)} {hashlib.sha256(mpy).hexdigest()}")
        sh.cmd("ota data " + base64.b64encode(mpy).decode())
        assert sh.cmd("ota end") == "ok"
        assert sh.cmd("ota set socport 99999999").startswith("Error: socport must be")
        assert sh.cmd("ota commit 1 0") == "Error: no update: send ota begin first"  # aborted
        assert sh.cmd("mine hello") == "old LM"
        assert not (n.fs / ".ota").exists()
        sh.cmd("ota begin")
        assert sh.cmd("ota set hwuid aa") == "Error: hwuid is written by the node itself"
    assert not (n.fs / ".ota").exists() and not (n.fs / "LM_mine.mpy").exists()


def test_settings_of_an_interrupted_commit_are_applied_at_boot(mk):
    n = mk(start=False)
    (n.fs / ".ota").mkdir()
    (n.fs / ".ota" / ".set").write_text("devfid bootset01\n")
    (n.fs / ".ota" / ".commit").write_text("")
    n.start()
    with Shell(n.port) as sh:
        assert sh.prompt == "bootset01 $ "
    assert not (n.fs / ".ota").exists()


def test_host_checks_settings_before_connecting():
    with pytest.raises(MicrosError, match="setting .*socport"):
        ota.push({}, 9, settings={"socport": "abc"})


def test_invoke_ota_dev_and_all(mk, lm, tmp_path, monkeypatch):
    """--dev through the device cache; --all: the canary first, a table of versions, and the first
    failure stops the run (a node that is down: the nodes after it are not touched)."""
    import os
    import subprocess

    from microsctl import ROOT
    from microsctl.fleet import cache as devcache

    monkeypatch.setenv("MICROS_DATA", str(tmp_path / "data"))
    a, b = mk(sets=["devfid=alpha"]), mk(sets=["devfid=beta"])
    c = devcache.Cache()
    c.add("uid-a", "alpha", "127.0.0.1", a.port)
    c.add("uid-b", "beta", "127.0.0.1", b.port)
    c.save()

    def inv(*args):
        return subprocess.run(["invoke", "ota", *args], capture_output=True, text=True, cwd=ROOT,
                              env=dict(os.environ), timeout=120)

    out = inv("--dev", "beta", "--files", str(lm))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("[ota] done: LM_mine.mpy")
    with Shell(b.port) as sh:
        assert sh.cmd("mine hello") == "new LM"
    out = inv("--all", "--files", str(tmp_path / "src" / "LM_mine.py"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split() == ["node", "address", "wave", "version", "before", "after", "result"]
    assert "canary, updated" in lines[1] and lines[1].startswith("alpha")
    a.stop()  # the canary is down: nothing else is tried
    out = inv("--all", "--files", str(lm), "--timeout", "2")
    assert out.returncode == 1
    assert "failed: no micrOS shell at" in out.stdout and "not tried: stopped at the first failure" in out.stdout
    assert out.stderr.strip().splitlines()[-1].startswith("error: the update stopped at the first failure")


def test_ota_needs_an_authenticated_shell(mk, make_node, lm):
    """With a key on the node, a client that did not answer the challenge is refused at every
    ota line, the raw data path too; a node with auth off takes no update at all."""
    n = _node_with_old(mk)
    raw = socket.create_connection(("127.0.0.1", n.port))
    raw.settimeout(5)

    def say(line):
        raw.sendall(line.encode() + b"\n")
        got = b""
        while not got.endswith(b"$ "):
            got += raw.recv(4096)
        return got.decode()

    assert "Auth: hmac-sha256" in raw.recv(4096).decode()
    assert "Error: ota needs an authenticated shell" in say("ota begin")
    assert "Error: ota needs an authenticated shell" in say("ota data " + base64.b64encode(b"x" * 9).decode())
    raw.close()
    assert not (n.fs / ".ota").exists()
    with Shell(n.port) as sh:
        assert sh.authenticated and sh.cmd("mine hello") == "old LM"
    import os

    key = os.environ.pop("MICROS_AUTHKEY")
    try:
        off = make_node()  # no key anywhere: auth off
    finally:
        os.environ["MICROS_AUTHKEY"] = key
    assert off.config()["authkey"] == "n/a"
    with Shell(off.port) as sh:
        assert sh.cmd("ota begin") == "Error: ota needs an authenticated shell: set authkey (docs/security.md)"
    with pytest.raises(MicrosError, match="ota needs an authenticated shell"):
        ota.push({"a.txt": b"x"}, off.port)
