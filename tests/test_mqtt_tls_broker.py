"""`invoke sim --mqtt` with no URL: the trial broker is Mosquitto when installed, else the PyPI
broker amqtt (pinned in pyproject.toml), else one line saying what to install
(microsctl/mqtt/broker.py embedded()). Mosquitto is hidden by making its lookup find nothing:
Debian puts it in /usr/sbin, which broker.mosquitto() searches besides PATH, so PATH alone
cannot hide it."""
import json

import pytest

from microsctl import MicrosError
from microsctl.mqtt import broker as mb
from microsctl.mqtt import sim as mqttsim
from microsctl.mqtt.client import Fleet
from tests.test_mqtt import Watch


@pytest.fixture
def no_mosquitto(monkeypatch):
    monkeypatch.setattr(mb, "mosquitto", lambda: None)


@pytest.mark.skipif(not mb.amqtt(), reason=f"amqtt is not installed (pip install {mb.AMQTT})")
def test_without_mosquitto_the_trial_broker_is_amqtt_and_a_node_works_on_it(no_mosquitto, make_node, capsys):
    broker, sets = mqttsim.settings(True)
    assert type(broker) is mb.Amqtt and broker.proc is None
    assert broker.argv()[1:3] == ["-m", "amqtt.scripts.broker_script"]
    with broker:
        w = Watch(broker.port, "micros/am01/#")
        n = make_node("lamp", sets=sets + ["devfid=am01", "mqttka=4", "mqttper=1"], name="am01")
        mqttsim.describe(n.config(), broker)
        assert "(amqtt started for this trial)" in capsys.readouterr().out
        assert w.wait(lambda m: m[0] == "micros/am01/status" and m[1] == "online"), open(n.log).read()[-600:]
        with Fleet(broker.url).connect() as f:
            assert f.command("am01", "hello").startswith("hello:am01:")
            assert f.command("am01", "gpio RGB 5 6 7") == "SET RGB"
        assert w.wait(lambda m: m[0] == "micros/am01/state" and json.loads(m[1]).get("gpio", {}).get("rgb") == [5, 6, 7])
        k = len(w.msgs)
        n.proc.kill()  # its will, from amqtt too
        n.stop()
        assert w.wait(lambda m: m[0] == "micros/am01/status" and m[1] == "offline", after=k, timeout=5)
        w.close()
    assert broker.proc is None


def test_mosquitto_first_when_installed(monkeypatch):
    monkeypatch.setattr(mb, "mosquitto", lambda: "/usr/sbin/mosquitto")
    assert type(mb.embedded()) is mb.Mosquitto


def test_no_broker_at_all_says_what_to_install(no_mosquitto, monkeypatch):
    monkeypatch.setattr(mb, "amqtt", lambda: False)
    with pytest.raises(MicrosError) as e:
        mqttsim.settings(True)
    msg = str(e.value)
    assert "\n" not in msg and "apt-get install mosquitto" in msg and "pip install amqtt==0.12.1" in msg
    assert "--mqtt mqtt://host:port" in msg


def test_amqtt_takes_no_users_or_tls():
    with pytest.raises(MicrosError, match="install Mosquitto"):
        mb.Amqtt(users={"u": "p"})._write_config()


def test_the_named_amqtt_is_the_pinned_one():
    from microsctl import ROOT

    text = (ROOT / "pyproject.toml").read_text()
    assert f'broker = ["{mb.AMQTT}"]' in text and f'"{mb.AMQTT}",' in text
