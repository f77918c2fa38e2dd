"""`invoke bench --only mqtt`'s frozen measure (microsctl/bench/mqtt.py): issue 15's verdict is
computed from the figures; with no binary with micrOS frozen in, the measure says why it skips.
On a frozen binary (MICROS_MICROPYTHON=<shared/tools/unix-frozen.sh build>) the measure runs."""
import os

import pytest

from microsctl.bench import Skipped
from microsctl.bench import mqtt as bm
from microsctl.mqtt import broker as mb
from microsctl.node.sim import frozen_core
from microsctl.run import MICROPYTHON_ENV, micropython


def _res(idle, peak, bits=32, off_mods=()):
    off = {"used": 30000, "modules": ["micros", *off_mods]}
    on = {"used": 30000 + idle, "modules": ["micros", "micros.mqtt"]}
    return {"exe": "/x/build-y-32/micropython", "heap": "64k", "version": "1.28.0", "bits": bits, "off": off,
            "on": on, "idle": idle, "peak": peak, "total": idle + peak, "writes": 9, "lms": "gpio"}


def test_the_verdict_follows_the_figures():
    assert "4,096 B: meets; nothing when off: meets" in bm.frozen_report(_res(2048, 2048))
    assert "4,097 B: MISSES" in bm.frozen_report(_res(2049, 2048))
    assert "nothing when off: MISSES" in bm.frozen_report(_res(100, 100, off_mods=("micros.mqtt",)))
    assert "meets" not in bm.frozen_report(_res(100, 100, bits=64))  # judged on a 32-bit binary only


@pytest.mark.skipif(not mb.mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")
def test_a_binary_without_micros_frozen_in_is_skipped_with_the_reason(monkeypatch):
    exe = micropython()
    if frozen_core(exe) is not None:
        pytest.skip(f"{exe} has micrOS frozen in")
    monkeypatch.setenv(MICROPYTHON_ENV, exe)
    with pytest.raises(Skipped, match="has no micrOS frozen in: build one with shared/tools/unix-frozen.sh"):
        bm.mqtt()


@pytest.mark.skipif(not mb.mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")
def test_on_a_frozen_binary_the_client_is_measured(tmp_path):
    exe = os.environ.get(MICROPYTHON_ENV)
    if not exe or frozen_core(exe) is None:
        pytest.skip("no binary with micrOS frozen in: set MICROS_MICROPYTHON to a shared/tools/unix-frozen.sh build")
    with mb.Mosquitto() as b:
        res = bm.frozen_heap(exe, str(tmp_path), b)
    assert res["off"]["used"] > 0 and 0 < res["idle"] and 0 < res["peak"]
    assert not [m for m in res["off"]["modules"] if m.startswith("micros.mqtt")]  # nothing when off
    assert "micros.mqtt" in res["on"]["modules"] and "micros.mqttha" not in res["on"]["modules"]
    assert res["writes"] > 10  # every entity's config went out through micros.mqtt.put
