"""Home Assistant MQTT discovery end to end: virtual nodes (MicroPython unix port, micros.mqtt
and micros.mqttha) with Load Modules active, on a Mosquitto on loopback. Every config is
checked against HA's discovery schema (tests/hass.py, written from HA 2026.2.3's sources,
files named there); commands are made the way HA makes them (its templates rendered with
the values homeassistant/components/mqtt/light/schema_template.py async_turn_on passes)
and published on the entity's command topic; the state is read back through the entity's
own templates from the node's telemetry."""
import colorsys
import json
import time

import paho.mqtt.client as mqtt
import pytest

from microsctl.mqtt import broker as mb
from microsctl.node.client import Shell
from tests import hass
from tests.test_mqtt import Watch, mqtt_sets

pytestmark = pytest.mark.skipif(not mb.mosquitto(), reason="mosquitto is not installed (apt-get install mosquitto)")


@pytest.fixture(scope="module")
def broker():
    with mb.Mosquitto() as b:
        yield b


def _pub(broker, topic, payload, retain=False):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def retained(broker, pattern, settle=1.0):
    """{topic: payload} of the retained messages under pattern, as a new subscriber gets them."""
    w = Watch(broker.port, pattern)
    time.sleep(settle)
    w.close()
    return {m[0]: m[1] for m in w.msgs if m[2]}


def configs(broker, node):
    """{(component, object_id): full config} of a node's retained discovery configs, each validated."""
    out = {}
    for topic, payload in retained(broker, f"homeassistant/+/{node}/+/config").items():
        comp, cfg = hass.validate(topic, payload)
        if cfg is not None:
            out[(comp, hass.parse_topic(topic)[2])] = cfg
    return out


def wait_configs(broker, node, want, timeout=10):
    end = time.monotonic() + timeout
    while True:
        got = configs(broker, node)
        if set(want) <= set(got) or time.monotonic() > end:
            return got
        time.sleep(0.3)


def ha_on(cfg, this, rgb=None, brightness=None):
    """The command HA publishes for light.turn_on (schema_template.py async_turn_on): red/green/
    blue from the HS colour at the given brightness, or at 255 when the light has a brightness
    template; `this` is the entity's state object (its attributes)."""
    values = {"state": True}
    if brightness is not None:
        values["brightness"] = brightness
    if rgb is not None:
        h, s, _ = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        b = 255 if "brightness_template" in cfg else (brightness if brightness is not None
                                                       else this["attributes"].get("brightness") or 255)
        r, g, bl = colorsys.hsv_to_rgb(h, s, b / 255)
        values.update(red=round(r * 255), green=round(g * 255), blue=round(bl * 255))
    return hass.render(cfg["command_on_template"], this=this, **values)


def ha_state(cfg, state):
    """What HA reads from a state message: (on/off, brightness, (r, g, b) or None)."""
    v = {"value_json": state}
    bri = hass.render(cfg["brightness_template"], **v) if "brightness_template" in cfg else None
    rgb = (tuple(int(hass.render(cfg[f"{c}_template"], **v)) for c in ("red", "green", "blue"))
           if "red_template" in cfg else None)
    return hass.render(cfg["state_template"], **v), int(bri) if bri else None, rgb


def this_of(st):
    """HA's state object of a light in state st (what `this` holds in a command template)."""
    on, bri, rgb = st
    if on != "on":
        return {"attributes": {}}
    attrs = {"brightness": bri}
    if rgb:
        h, s, _ = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
        attrs["rgb_color"] = tuple(round(c * 255) for c in colorsys.hsv_to_rgb(h, s, 1))
    return {"attributes": attrs}


class HA:
    """Home Assistant's side of one node: send a command on an entity's command topic as HA does,
    and wait for the state that follows."""

    def __init__(self, broker, node):
        self.broker, self.node = broker, node
        self.w = Watch(broker.port, f"micros/{node}/state")

    def state(self, pred, timeout=10):
        after = 0
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = self.w.wait(lambda m: True, timeout=max(0.1, end - time.monotonic()), after=after)
            if m is None:
                break
            after = self.w.msgs.index(m) + 1
            st = json.loads(m[1])
            if pred(st):
                return st
        return None

    def send(self, cfg, payload):
        _pub(self.broker, cfg["command_topic"], payload)

    def close(self):
        self.w.close()


# The virtual board's devices (ports/unix devices.py, dht.py: Python source, compiled in RAM when
# first imported) are wired in the boot hook, while the heap is whole. Six LMs, the device shims
# and MQTT do not fit the usual 128k of the unix port's 64-bit objects with .mpy bytecode in RAM
# (out of memory at the first config); this node runs at 192k.
SENSOR_BOOT = ("sim dht simple_1 21.5 40.2;sim distance pwm_5 1234;gpio RGB(0,0,0);dimmer dimmer_cache_load_n_init;"
               "switch switch_cache_load_n_init;motion_sensor get_PIR_state;air dht_measure;distance_HCSR04 distance_mm")


@pytest.fixture(scope="module")
def many(tmp_path_factory, broker):
    """A node with gpio, dimmer, switch, motion_sensor, air and distance_HCSR04 loaded."""
    from microsctl.node.sim import SimNode, free_port

    n = SimNode("ha01", root=tmp_path_factory.mktemp("ha01"), heap="192k", drive=True)
    n.prepare("lamp", mqtt_sets(broker, devfid="ha01", mqttper=60, boothook=SENSOR_BOOT), port=free_port())
    n.start()
    with Shell(n.port) as s:
        assert json.loads(s.cmd("air dht_measure >json")) == {"temp": 21.5, "hum": 40.2}
        assert s.cmd("distance_HCSR04 distance_mm") == "1234"
    yield n
    n.stop()


EXPECTED = {("sensor", "memfree"), ("sensor", "rssi"), ("sensor", "uptime"), ("button", "reboot"),
            ("light", "rgb"), ("light", "dimmer"), ("switch", "switch"), ("binary_sensor", "motion"),
            ("sensor", "temperature"), ("sensor", "humidity"), ("sensor", "distance")}


def test_every_entity_of_the_active_lms_is_announced_and_valid(many, broker):
    ha = HA(broker, "ha01")
    try:
        _pub(broker, "micros/ha01/cmd", "switch set_state 1")  # a command: telemetry follows at once
        st = ha.state(lambda st: st.get("switch") == {"s": 1} and "air" in st and "distance_HCSR04" in st)
        assert st, ha.w.msgs[-3:]
    finally:
        ha.close()
    cfgs = wait_configs(broker, "ha01", EXPECTED)
    assert EXPECTED <= set(cfgs)
    assert ("light", "light") not in cfgs and ("light", "neopixel") not in cfgs  # not loaded on this node
    ids = set()
    for (comp, obj), cfg in cfgs.items():
        assert cfg["availability_topic"] == "micros/ha01/status"
        dev = cfg["device"]
        assert dev["name"] == "ha01" and dev["sw_version"] == "0.1.0" and dev["model"] and dev["manufacturer"]
        assert dev["identifiers"] and dev["identifiers"][0] in cfg["unique_id"]
        ids.add(cfg["unique_id"])
        if comp != "button":
            assert cfg["state_topic"] == "micros/ha01/state"
        if comp in ("light", "switch", "button"):
            assert cfg["command_topic"] == "micros/ha01/cmd"
    assert len(ids) == len(cfgs)  # one unique id per entity
    # the value templates, rendered as HA does, read the node's real telemetry
    v = {"value_json": st}
    assert hass.render(cfgs[("sensor", "temperature")]["value_template"], **v) == "21.5"
    assert cfgs[("sensor", "temperature")]["unit_of_measurement"] == "°C"
    assert hass.render(cfgs[("sensor", "humidity")]["value_template"], **v) == "40.2"
    assert hass.render(cfgs[("sensor", "distance")]["value_template"], **v) == "1234"
    assert hass.render(cfgs[("sensor", "memfree")]["value_template"], **v) == str(st["memfree"])
    sw = cfgs[("switch", "switch")]
    assert hass.render(sw["value_template"], **v) == sw["state_on"]
    assert hass.render(cfgs[("binary_sensor", "motion")]["value_template"], **v) == \
        cfgs[("binary_sensor", "motion")]["payload_off"]


def test_switch_command_from_ha_changes_the_lm_and_the_state_shows_it(many, broker):
    sw = wait_configs(broker, "ha01", {("switch", "switch")})[("switch", "switch")]
    ha = HA(broker, "ha01")
    try:
        for payload, want in ((sw["payload_off"], sw["state_off"]), (sw["payload_on"], sw["state_on"]),
                              (sw["payload_off"], sw["state_off"])):
            t0 = time.monotonic()
            ha.send(sw, payload)
            st = ha.state(lambda st: hass.render(sw["value_template"], value_json=st) == want, timeout=5)
            assert st, f"{payload!r}: no state {want!r}"
            assert time.monotonic() - t0 < 5  # pushed after the command, not at the 60 s period
        with Shell(many.port) as s:
            assert s.cmd("switch state >json") == '{"s": 0}'
    finally:
        ha.close()


def test_motion_is_pushed_when_it_happens(many, broker):
    bs = wait_configs(broker, "ha01", {("binary_sensor", "motion")})[("binary_sensor", "motion")]
    ha = HA(broker, "ha01")
    try:
        for level, want in ((1, bs["payload_on"]), (0, bs["payload_off"])):
            with Shell(many.port) as s:
                s.cmd(f"sim edge simple_2 {level}")
            st = ha.state(lambda st: hass.render(bs["value_template"], value_json=st) == want, timeout=5)
            assert st, f"motion {level} not pushed (telemetry period is 60 s)"
    finally:
        ha.close()


def _light_roundtrip(broker, node, cfg):
    ha = HA(broker, node)
    try:
        def step(payload, pred, what):
            ha.send(cfg, payload)
            st = ha.state(lambda st: pred(ha_state(cfg, st)), timeout=6)
            assert st, f"{what}: sent {payload!r}, last state {ha.w.msgs[-1][1] if ha.w.msgs else None}"
            return ha_state(cfg, st)

        close = lambda a, b, tol=3: a is not None and all(abs(x - y) <= tol for x, y in zip(a, b))  # noqa: E731
        off = {"attributes": {}}
        colour = "red_template" in cfg
        # turn on red at brightness 128 from off
        got = step(ha_on(cfg, off, rgb=(255, 0, 0) if colour else None, brightness=128),
                   lambda s: s[0] == "on" and s[1] and abs(s[1] - 128) <= 2, "red at 128")
        if colour:
            assert close(got[2], (255, 0, 0))
            # a new colour alone keeps the brightness (HA sends no brightness then)
            got = step(ha_on(cfg, this_of(got), rgb=(0, 0, 255)),
                       lambda s: s[0] == "on" and close(s[2], (0, 0, 255)), "blue")
            assert abs(got[1] - 128) <= 2
        # brightness alone keeps the colour
        got2 = step(ha_on(cfg, this_of(got), brightness=255), lambda s: s[0] == "on" and s[1] >= 253, "brightness 255")
        if colour:
            assert close(got2[2], (0, 0, 255))
        step(hass.render(cfg["command_off_template"], state=False), lambda s: s[0] == "off", "off")
        # a bare "on" (no colour, no brightness): the light comes back on
        step(ha_on(cfg, off), lambda s: s[0] == "on" and s[1], "bare on")
    finally:
        ha.close()


def test_gpio_rgb_and_dimmer_lights_follow_ha_commands(many, broker):
    cfgs = wait_configs(broker, "ha01", {("light", "rgb"), ("light", "dimmer")})
    _light_roundtrip(broker, "ha01", cfgs[("light", "rgb")])
    _light_roundtrip(broker, "ha01", cfgs[("light", "dimmer")])
    with Shell(many.port) as s:
        assert json.loads(s.cmd("dimmer state >json")) == {"value": 1000, "s": 1}


@pytest.mark.parametrize("profile,lm", [("light", "light"), ("neopixel", "neopixel")])
def test_light_and_neopixel_lights_follow_ha_commands(make_node, broker, profile, lm):
    node = f"{lm}ha"
    make_node(profile, sets=mqtt_sets(broker, devfid=node, mqttper=60), name=node)
    cfg = wait_configs(broker, node, {("light", lm)})[("light", lm)]
    assert cfg["schema"] == "template" and cfg["command_topic"] == f"micros/{node}/cmd"
    _light_roundtrip(broker, node, cfg)


def test_unloading_an_lm_removes_its_entity(many, broker):
    topic = "homeassistant/switch/ha01/switch/config"
    assert topic in retained(broker, topic)
    w = Watch(broker.port, "homeassistant/#")
    try:
        with Shell(many.port) as s:
            s.cmd("system module unload=switch")
        gone = w.wait(lambda m: m[0] == topic and m[1] == "", timeout=65)
        assert gone, "no empty config for the unloaded switch"
        assert topic not in retained(broker, topic)  # the retained config is cleared
        assert "homeassistant/light/ha01/rgb/config" in retained(broker, "homeassistant/light/ha01/#")  # others stay
        with Shell(many.port) as s:
            s.cmd("switch set_state 0")  # loaded again: announced again
        assert w.wait(lambda m: m[0] == topic and m[1], after=w.msgs.index(gone), timeout=65)
    finally:
        w.close()


def test_a_connect_removes_entities_of_lms_no_longer_loaded(make_node, broker):
    """A node rebooted with fewer LMs: the retained configs it left before go."""
    stale = "homeassistant/binary_sensor/gone01/motion/config"
    _pub(broker, stale, json.dumps({"stat_t": "micros/gone01/state", "uniq_id": "x_motion", "dev": {"ids": ["x"]}}),
         retain=True)
    assert stale in retained(broker, stale)
    make_node("lamp", sets=mqtt_sets(broker, devfid="gone01"), name="gone01")
    cfgs = wait_configs(broker, "gone01", {("light", "rgb")})
    assert ("light", "rgb") in cfgs
    assert stale not in retained(broker, stale)


def test_the_validator_refuses_what_home_assistant_refuses():
    ok = {"~": "a/n1/", "stat_t": "~state", "uniq_id": "x_1", "dev": {"ids": ["x"]}, "unit_of_meas": "°C",
          "dev_cla": "temperature", "stat_cla": "measurement", "val_tpl": "{{value_json.air.temp}}"}
    comp, cfg = hass.validate("homeassistant/sensor/n1/t/config", json.dumps(ok))
    assert comp == "sensor" and cfg["state_topic"] == "a/n1/state"  # "~" expanded as discovery.py does
    light = {"schema": "template", "cmd_t": "a/cmd", "cmd_on_tpl": "x", "cmd_off_tpl": "y"}
    hass.validate("homeassistant/light/n1/l/config", json.dumps(light))
    bad = [
        ("sensor", dict(ok, unit_of_meas="%")),  # a unit HA refuses for the class
        ("sensor", dict(ok, dev_cla="temprature")),
        ("sensor", dict(ok, ent_cat="config")),  # a sensor is never a config entity
        ("sensor", dict(ok, stat_cla="sometimes")),
        ("sensor", {k: v for k, v in ok.items() if k != "stat_t"}),
        ("sensor", dict(ok, stat_t="a/+x")),
        ("sensor", dict(ok, dev={"name": "no id"})),
        ("sensor", dict(ok, dev={"ids": ["x"], "cns": [["mac"]]})),
        ("sensor", dict(ok, bri_tpl="{{1}}")),  # a key HA would drop for a sensor
        ("sensor", dict(ok, val_tpl="{{ value_json.x ")),
        ("binary_sensor", {"stat_t": "a/s", "dev_cla": "motions"}),
        ("button", {"cmd_t": "a/#"}),
        ("button", {"cmd_t": "a/cmd", "dev_cla": "reboot"}),
        ("switch", {"cmd_t": "a/cmd", "dev_cla": "light"}),
        ("switch", {"cmd_t": "a/cmd", "ret": "yes"}),
        ("light", {k: v for k, v in light.items() if k != "cmd_off_tpl"}),
        ("light", dict(light, schema="json")),
        ("light", dict(light, bri_scl=100)),
    ]
    for comp, payload in bad:
        with pytest.raises(hass.Invalid):
            hass.validate(f"homeassistant/{comp}/n1/x/config", json.dumps(payload))
    for topic in ("homeassistant/sensor/n.1/t/config", "homeassistant/sensor/n1/t/conf"):
        with pytest.raises(hass.Invalid):
            hass.validate(topic, json.dumps(ok))
    assert hass.validate("homeassistant/sensor/n1/t/config", "") == ("sensor", None)  # a removal


LM_LUX = '''
_v = [0]


def set_lux(v):
    _v[0] = int(v)
    return _v[0]


def state():
    return {"lux": _v[0]}


def discovery():
    return [("sensor", "lux", {"name": "Light level", "val_tpl": "{{ value_json.lux.lux }}",
                               "unit_of_meas": "lx", "dev_cla": "illuminance", "stat_cla": "measurement"}),
            ("button", "lux_reset", {"name": "Reset", "pl_prs": "lux set_lux 0"})]
'''


def test_a_user_lm_announces_its_own_entities(make_node, broker):
    n = make_node("default", sets=mqtt_sets(broker, devfid="user01", boothook="lux set_lux 321"), name="user01",
                  start=False)
    n.fs.joinpath("LM_lux.py").write_text(LM_LUX)
    n.start()
    cfgs = wait_configs(broker, "user01", {("sensor", "lux"), ("button", "lux_reset")})
    lux, btn = cfgs[("sensor", "lux")], cfgs[("button", "lux_reset")]
    assert lux["state_topic"] == "micros/user01/state" and lux["device"]["name"] == "user01"
    assert btn["command_topic"] == "micros/user01/cmd" and "state_topic" not in btn
    st = json.loads(retained(broker, "micros/user01/state")["micros/user01/state"])
    assert hass.render(lux["value_template"], value_json=st) == "321"
    ha = HA(broker, "user01")
    try:
        ha.send(btn, btn["payload_press"])
        assert ha.state(lambda s: hass.render(lux["value_template"], value_json=s) == "0")
    finally:
        ha.close()
