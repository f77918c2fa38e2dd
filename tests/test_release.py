"""The release workflow and where `invoke fetch` looks for releases.

The workflow is linted with zizmor (PyPI wheel, binary inside, runs offline): syntax,
the GitHub workflow schema, unpinned actions, template injection, persisted
credentials. Which action majors run on Node 24 was read from each action's
action.yml (`runs.using`) at its release tag; the node20 ones are past their removal.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from microsctl import ROOT, MicrosError
from microsctl.firmware import release

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
# the first major of each action whose action.yml says `using: node24`
NODE24_SINCE = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 6,
                "actions/download-artifact": 7}


def zizmor(path):
    exe = Path(sys.executable).with_name("zizmor")
    exe = str(exe) if exe.exists() else shutil.which("zizmor")
    assert exe, "zizmor is a dev dependency: pip install -e '.[dev]'"
    return subprocess.run([exe, "--offline", "--no-progress", str(path)], capture_output=True, text=True, timeout=120)


def test_the_release_workflow_is_lint_clean():
    res = zizmor(WORKFLOW)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("broken", [
    ("syntax", 'tags: ["v*"]', 'tags: ["v*"'),
    ("unknown key", "    runs-on: ubuntu-24.04\n    permissions:\n      contents: read",
     "    run-on: ubuntu-24.04\n    permissions:\n      contents: read"),
    ("unpinned action", "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "actions/upload-artifact@v7"),
    ("template injection", '"${GITHUB_REF_NAME}" dist/*', '"${{ github.ref_name }}" dist/*'),
    ("persisted credentials", "persist-credentials: false", "fetch-depth: 1"),
], ids=lambda b: b[0])
def test_the_linter_fails_a_broken_workflow(tmp_path, broken):
    _, old, new = broken
    text = WORKFLOW.read_text()
    assert old in text
    path = tmp_path / "release.yml"
    path.write_text(text.replace(old, new, 1))
    res = zizmor(path)
    assert res.returncode != 0, res.stdout + res.stderr


def test_actions_are_pinned_node24_releases():
    used = re.findall(r"uses: ([\w.-]+/[\w.-]+)@(\S+)(?: # v(\d+)\.\d+\.\d+)?", WORKFLOW.read_text())
    assert {u[0] for u in used} == set(NODE24_SINCE)
    for action, ref, major in used:
        assert re.fullmatch(r"[0-9a-f]{40}", ref) and major, f"{action}@{ref}: pin a commit, name its tag in a comment"
        assert int(major) >= NODE24_SINCE[action], f"{action} v{major} runs on Node 20, which GitHub removed"


def test_the_release_is_published_where_invoke_fetch_looks():
    wf = yaml.safe_load(WORKFLOW.read_text())
    pub = " ".join(str(s.get("run", "")) for s in wf["jobs"]["publish"]["steps"])
    assert '--repo "${GITHUB_REPOSITORY}"' in pub and "--url" not in pub  # the URL follows from the repository
    assert "gh release create" in pub and "dist/*" in pub
    repo = release.repository()
    assert release.index_url() == f"https://github.com/{repo}/releases/latest/download/release-index.json"
    assert release.download_url("v1.2.3") == f"https://github.com/{repo}/releases/download/v1.2.3"


def test_publishing_from_another_repository_is_refused(tmp_path, capsys):
    mine = release.repository()
    release.check_repo(mine.upper())  # GitHub names are case-insensitive
    with pytest.raises(MicrosError, match=f"published in someone/fork but pyproject.toml names {mine}"):
        release.check_repo("someone/fork")
    assert release.main(["--version", "v0.0.0", "--repo", "someone/fork", "--out", str(tmp_path)]) == 1
    assert "fix that line" in capsys.readouterr().err


def test_the_repository_is_read_from_pyproject(tmp_path):
    # installed from a wheel there is no pyproject.toml: the same line, from the package metadata
    assert release.repository(tmp_path / "missing.toml") == release.repository()
    p = tmp_path / "pyproject.toml"
    p.write_text('[project.urls]\nRepository = "https://github.com/acme/micros.git"\n')
    assert release.repository(p) == "acme/micros"
    p.write_text('[project.urls]\nRepository = "https://gitlab.com/acme/micros"\n')
    with pytest.raises(MicrosError, match="must be https://github.com/OWNER/NAME"):
        release.repository(p)
