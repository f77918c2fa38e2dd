"""The Dockerfile's esp32 stage, replayed with the real IDF component manager: components
fetched per board at image build, then every board prepared with the network gone, as the
image's `RUN --network=none` step and a `docker run --network none` build do.

The board order and the component manager settings are read from the Dockerfile; the
component manager is PyPI idf-component-manager (the espressif/idf image runs its own copy
during CMake: idf_component_manager/dependencies.py, download_project_dependencies). What
it does that matters here: a target switch deletes the other targets' components from
managed_components; registry components come back from IDF_COMPONENT_CACHE_PATH without
network; a git component (tinyusb) needs its remote."""
import re
import shutil

import pytest

from microsctl import ROOT
from microsctl.firmware import boards

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pyparsing names in the manager
pytest.importorskip("idf_component_manager")
if not shutil.which("git"):
    pytest.skip("git is needed for the tinyusb stand-in", allow_module_level=True)

from tests.idfsim import Project, Registry  # noqa: E402


def esp32_stage():
    text = (ROOT / "Dockerfile").read_text()
    return next(p for p in re.split(r"^FROM ", text, flags=re.M) if p.split("\n", 1)[0].endswith(" AS esp32"))


def dockerfile_plan():
    """(ENV of the stage, boards fetched with network in order, boards checked offline in order)."""
    stage = esp32_stage()
    env = dict(re.findall(r"\b(IDF_COMPONENT_\w+)=(\S+)", stage))
    runs = re.findall(r"^RUN (.*?)(?<!\\)$", stage, re.M | re.S)
    fetch = [r for r in runs if "submodules" in r and not r.startswith("--network=none")]
    offline = [r for r in runs if r.startswith("--network=none")]
    order = lambda r: re.search(r"for b in ([\w ]+); do", r).group(1).split()  # noqa: E731
    return env, order(fetch[0]) if fetch else [], order(offline[0]) if offline else [], bool(
        offline and "managed_components" in offline[0])


def chip(board_name):
    return boards.get(board_name).chip


@pytest.fixture
def sim(tmp_path):
    reg = Registry(tmp_path / "registry")
    proj = Project(tmp_path / "tree", reg)
    yield proj
    try:
        reg.stop()
    except OSError:
        pass


def test_every_esp32_board_prepares_with_the_network_gone(sim, tmp_path):
    env, fetch, offline, restores = dockerfile_plan()
    family = sorted(n for n in (boards.get(b).name for b in boards.names()) if boards.get(n).port == "esp32")
    assert sorted(fetch) == family, "the image must fetch components for every ESP32-family board"
    # the image build runs as root (HOME=/root); builds run with HOME=/tmp as another user:
    # without a fixed cache path the two do not share the component cache
    cache = env.get("IDF_COMPONENT_CACHE_PATH")
    at_build = dict(env, IDF_COMPONENT_CACHE_PATH=str(tmp_path / "cache" if cache else tmp_path / "root-home-cache"))
    at_run = dict(env, IDF_COMPONENT_CACHE_PATH=str(tmp_path / "cache" if cache else tmp_path / "tmp-home-cache"))
    for b in fetch:
        ok, _, last = sim.prepare(chip(b), at_build)
        assert ok, f"{b} (online): {last}"
    sim.cut_network(at_build["IDF_COMPONENT_CACHE_PATH"])
    image = tmp_path / "image-managed_components"
    shutil.copytree(sim.managed, image)

    # docker run --network none: each build starts from the image's tree
    want = {"esp32": ["espressif__lan867x", "espressif__mdns"], "esp32c3": ["espressif__mdns"],
            "esp32s3": ["espressif__mdns", "espressif__tinyusb"]}
    for b in family:
        shutil.rmtree(sim.managed)
        shutil.copytree(image, sim.managed)
        ok, got, last = sim.prepare(chip(b), at_run)
        assert ok, f"{b}: docker run --network none would fail: {last}"
        assert got == want[chip(b)]

    # the Dockerfile's own offline check, as it is written
    assert sorted(offline) == family, "the image must check every board offline"
    shutil.rmtree(sim.managed)
    shutil.copytree(image, sim.managed)
    for b in offline:
        ok, _, last = sim.prepare(chip(b), at_build)
        assert ok, f"{b}: the image's offline step would fail: {last}"
        if restores:
            shutil.rmtree(sim.managed)
            shutil.copytree(image, sim.managed)


def test_the_checks_can_fail(sim, tmp_path):
    """Controls: without the shared cache the ESP32 cannot get lan867x back offline, and once a
    target switch deleted tinyusb the S3 cannot get it back (git needs the remote)."""
    env, fetch, _, _ = dockerfile_plan()
    cache = str(tmp_path / "cache")
    for b in fetch:
        assert sim.prepare(chip(b), dict(env, IDF_COMPONENT_CACHE_PATH=cache))[0]
    sim.cut_network(cache)
    image = tmp_path / "image"
    shutil.copytree(sim.managed, image)
    ok, _, last = sim.prepare("esp32", dict(env, IDF_COMPONENT_CACHE_PATH=str(tmp_path / "empty")))
    assert not ok and "Cannot establish a connection to the component registry" in last
    shutil.rmtree(sim.managed)
    shutil.copytree(image, sim.managed)
    assert sim.prepare("esp32", dict(env, IDF_COMPONENT_CACHE_PATH=cache))[0]
    ok, got, _ = sim.prepare("esp32s3", dict(env, IDF_COMPONENT_CACHE_PATH=cache))
    assert not ok and "espressif__tinyusb" not in got
