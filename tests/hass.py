"""Home Assistant's MQTT discovery schema, per entity type, as a test-side validator.

Written (not copied) from Home Assistant 2026.2.3's sources (the `homeassistant` wheel on
PyPI), these files:
  homeassistant/components/mqtt/discovery.py     topic format, "~" base, abbreviation expansion,
                                                 empty payload = removal, origin check
  homeassistant/components/mqtt/abbreviations.py ABBREVIATIONS, DEVICE_ABBREVIATIONS, ORIGIN_ABBREVIATIONS
  homeassistant/components/mqtt/config.py        MQTT_BASE/RO/RW_SCHEMA (qos, encoding, state/command topic)
  homeassistant/components/mqtt/schemas.py       MQTT_ENTITY_COMMON_SCHEMA, availability, device, origin
  homeassistant/components/mqtt/util.py          valid_subscribe_topic / valid_publish_topic
  homeassistant/components/mqtt/sensor.py        DISCOVERY_SCHEMA + validate_sensor_state_and_device_class_config
  homeassistant/components/mqtt/binary_sensor.py, button.py, switch.py        DISCOVERY_SCHEMA
  homeassistant/components/mqtt/light/schema_template.py                       DISCOVERY_SCHEMA_TEMPLATE
  homeassistant/components/sensor/const.py       SensorDeviceClass, DEVICE_CLASS_UNITS, SensorStateClass
  homeassistant/components/{binary_sensor,button,switch}/__init__.py          device classes;
                                                 sensor/binary_sensor refuse entity_category "config"
  homeassistant/const.py                         UnitOf*, EntityCategory; helpers/template forgiving_round

One difference on purpose: HA's discovery schemas drop unknown keys (vol.REMOVE_EXTRA); here
an unknown key is refused, since a key HA drops is a bug in the payload. The light is
validated in HA's "template" schema only (the one micrOS announces)."""
import json
import re

import jinja2
import voluptuous as vol

TOPIC = re.compile(r"^(?P<prefix>.+?)/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
                   r"(?P<object_id>[a-zA-Z0-9_-]+)/config$")

# abbreviations.py: the keys of the five components' schemas
ABBREVIATIONS = {
    "avty": "availability", "avty_mode": "availability_mode", "avty_t": "availability_topic",
    "avty_tpl": "availability_template", "b_tpl": "blue_template", "bri_tpl": "brightness_template",
    "clr_temp_tpl": "color_temp_template", "cmd_off_tpl": "command_off_template",
    "cmd_on_tpl": "command_on_template", "cmd_t": "command_topic", "cmd_tpl": "command_template",
    "dev": "device", "dev_cla": "device_class", "e": "encoding", "en": "enabled_by_default",
    "ent_cat": "entity_category", "ent_pic": "entity_picture", "exp_aft": "expire_after",
    "frc_upd": "force_update", "fx_list": "effect_list", "fx_tpl": "effect_template", "g_tpl": "green_template",
    "ic": "icon", "json_attr_t": "json_attributes_topic", "json_attr_tpl": "json_attributes_template",
    "lrst_val_tpl": "last_reset_value_template", "max_mirs": "max_mireds", "min_mirs": "min_mireds",
    "max_k": "max_kelvin", "min_k": "min_kelvin", "name": "name", "o": "origin", "obj_id": "object_id",
    "def_ent_id": "default_entity_id", "off_dly": "off_delay", "ops": "options", "opt": "optimistic",
    "pl_avail": "payload_available", "pl_not_avail": "payload_not_available", "pl_off": "payload_off",
    "pl_on": "payload_on", "pl_prs": "payload_press", "r_tpl": "red_template", "ret": "retain",
    "stat_cla": "state_class", "stat_off": "state_off", "stat_on": "state_on", "stat_t": "state_topic",
    "stat_tpl": "state_template", "sug_dsp_prc": "suggested_display_precision", "t": "topic",
    "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement", "val_tpl": "value_template",
    "clr_temp_k": "color_temp_kelvin",
}
DEVICE_ABBREVIATIONS = {"cns": "connections", "cu": "configuration_url", "ids": "identifiers", "name": "name",
                        "mf": "manufacturer", "mdl": "model", "mdl_id": "model_id", "hw": "hw_version",
                        "sw": "sw_version", "sa": "suggested_area", "sn": "serial_number"}
ORIGIN_ABBREVIATIONS = {"name": "name", "sw": "sw_version", "url": "support_url"}

# sensor/const.py: the device classes micrOS emits (and illuminance, a user LM's in the tests),
# with every unit HA accepts for each
SENSOR_UNITS = {
    "data_size": {"bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB",
                  "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"},
    "signal_strength": {"dB", "dBm"},
    "duration": {"d", "h", "min", "s", "ms", "μs"},
    "temperature": {"°C", "°F", "K"},
    "humidity": {"%"},
    "distance": {"mm", "cm", "m", "km", "in", "ft", "yd", "mi", "nmi"},
    "illuminance": {"lx"},
}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
BINARY_SENSOR_CLASSES = {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                         "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving",
                         "occupancy", "opening", "plug", "power", "presence", "problem", "running", "safety",
                         "smoke", "sound", "tamper", "update", "vibration", "window"}
BUTTON_CLASSES = {"identify", "restart", "update"}
SWITCH_CLASSES = {"outlet", "switch"}


class Invalid(AssertionError):
    pass


def _string(v):
    if not isinstance(v, str):
        raise vol.Invalid(f"expected a string, got {v!r}")
    return v


def _topic(v):
    # util.py valid_topic: UTF-8, not empty, <= 65535 bytes, no NUL/control/non-characters
    v = _string(v)
    raw = v.encode("utf-8")
    if not raw or len(raw) > 65535:
        raise vol.Invalid("a topic is 1..65535 bytes")
    for ch in v:
        if ch <= "\x1f" or "\x7f" <= ch <= "\x9f" or "\ufdd0" <= ch <= "\ufdef" or (ord(ch) & 0xFFFF) in (0xFFFE, 0xFFFF):
            raise vol.Invalid(f"control or non-character in topic {v!r}")
    return v


def sub_topic(v):
    v = _topic(v)
    for i, ch in enumerate(v):
        if ch == "+" and ((i > 0 and v[i - 1] != "/") or (i < len(v) - 1 and v[i + 1] != "/")):
            raise vol.Invalid("+ must fill a whole topic level")
    i = v.find("#")
    if i != -1 and (i != len(v) - 1 or (len(v) > 1 and v[i - 1] != "/")):
        raise vol.Invalid("# must be the last level")
    return v


def pub_topic(v):
    v = _topic(v)
    if "+" in v or "#" in v:
        raise vol.Invalid("no wildcards in a topic HA publishes to")
    return v


def template(v):
    # config_validation.template: a string Jinja parses
    v = _string(v)
    try:
        jinja2.Environment().parse(v)
    except jinja2.TemplateSyntaxError as err:
        raise vol.Invalid(f"bad template {v!r}: {err}") from err
    return v


boolean = vol.Schema(bool)
positive_int = vol.All(int, vol.Range(min=0))
qos = vol.In([0, 1, 2])


def _device_has_id(dev):
    if dev.get("identifiers") or dev.get("connections"):
        return dev
    raise vol.Invalid("a device needs identifiers or connections")


DEVICE = vol.All(vol.Schema({
    vol.Optional("identifiers"): vol.Any([_string], _string),
    vol.Optional("connections"): [vol.All([_string], vol.Length(min=2, max=2))],
    **{vol.Optional(k): _string for k in ("manufacturer", "model", "model_id", "name", "hw_version",
                                          "serial_number", "sw_version", "via_device", "suggested_area",
                                          "configuration_url")},
}), _device_has_id)
ORIGIN = vol.Schema({vol.Required("name"): _string, vol.Optional("sw_version"): _string,
                     vol.Optional("support_url"): _string})
# config.py SCHEMA_BASE + schemas.py MQTT_ENTITY_COMMON_SCHEMA (availability single or list)
COMMON = {
    vol.Optional("qos"): qos, vol.Optional("encoding"): _string,
    vol.Exclusive("availability_topic", "availability"): sub_topic,
    vol.Exclusive("availability", "availability"): [vol.Schema({
        vol.Required("topic"): sub_topic, vol.Optional("payload_available"): _string,
        vol.Optional("payload_not_available"): _string, vol.Optional("value_template"): template})],
    vol.Optional("availability_mode"): vol.In(["all", "any", "latest"]),
    vol.Optional("availability_template"): template,
    vol.Optional("payload_available"): _string, vol.Optional("payload_not_available"): _string,
    vol.Optional("device"): DEVICE, vol.Optional("entity_picture"): _string, vol.Optional("origin"): ORIGIN,
    vol.Optional("enabled_by_default"): boolean, vol.Optional("entity_category"): vol.In(["config", "diagnostic"]),
    vol.Optional("icon"): vol.All(_string, vol.Match(r":")),
    vol.Optional("json_attributes_topic"): sub_topic, vol.Optional("json_attributes_template"): template,
    vol.Optional("default_entity_id"): _string, vol.Optional("object_id"): _string,
    vol.Optional("unique_id"): _string, vol.Optional("name"): vol.Any(_string, None),
}
RO = {vol.Required("state_topic"): sub_topic, vol.Optional("value_template"): template}
RW = {vol.Required("command_topic"): pub_topic, vol.Optional("optimistic"): boolean,
      vol.Optional("retain"): boolean, vol.Optional("state_topic"): sub_topic}


def _no_config_category(cfg):
    # sensor/__init__.py, binary_sensor/__init__.py: a read-only entity is never "config"
    if cfg.get("entity_category") == "config":
        raise vol.Invalid("a sensor's entity_category cannot be config")
    return cfg


def _sensor_units(cfg):
    # mqtt/sensor.py validate_sensor_state_and_device_class_config, for the classes we know
    dc, unit = cfg.get("device_class"), cfg.get("unit_of_measurement")
    if "options" in cfg and (dc != "enum" or cfg.get("state_class") or unit):
        raise vol.Invalid("options only with device_class enum, no state_class or unit")
    if dc is not None and unit is not None and unit.strip() and unit not in SENSOR_UNITS[dc]:
        raise vol.Invalid(f"unit {unit!r} is not valid with device class {dc!r}")
    return cfg


SCHEMAS = {
    "sensor": vol.All(vol.Schema({**COMMON, **RO,
                                  vol.Optional("device_class"): vol.Any(vol.In(sorted(SENSOR_UNITS)), None),
                                  vol.Optional("expire_after"): positive_int, vol.Optional("force_update"): boolean,
                                  vol.Optional("last_reset_value_template"): template,
                                  vol.Optional("options"): [_string],
                                  vol.Optional("suggested_display_precision"): positive_int,
                                  vol.Optional("state_class"): vol.Any(vol.In(sorted(STATE_CLASSES)), None),
                                  vol.Optional("unit_of_measurement"): vol.Any(_string, None)}),
                      _sensor_units, _no_config_category),
    "binary_sensor": vol.All(vol.Schema({**COMMON, **RO,
                                         vol.Optional("device_class"): vol.Any(vol.In(sorted(BINARY_SENSOR_CLASSES)), None),
                                         vol.Optional("expire_after"): positive_int,
                                         vol.Optional("force_update"): boolean, vol.Optional("off_delay"): positive_int,
                                         vol.Optional("payload_on"): _string, vol.Optional("payload_off"): _string}),
                             _no_config_category),
    "button": vol.Schema({**COMMON, vol.Required("command_topic"): pub_topic,
                          vol.Optional("command_template"): template,
                          vol.Optional("device_class"): vol.Any(vol.In(sorted(BUTTON_CLASSES)), None),
                          vol.Optional("payload_press"): _string, vol.Optional("retain"): boolean}),
    "switch": vol.Schema({**COMMON, **RW, vol.Optional("command_template"): template,
                          vol.Optional("payload_on"): _string, vol.Optional("payload_off"): _string,
                          vol.Optional("state_on"): _string, vol.Optional("state_off"): _string,
                          vol.Optional("value_template"): template,
                          vol.Optional("device_class"): vol.Any(vol.In(sorted(SWITCH_CLASSES)), None)}),
    "light": vol.Schema({**COMMON, **RW, vol.Required("schema"): "template",
                         vol.Required("command_on_template"): template,
                         vol.Required("command_off_template"): template,
                         **{vol.Optional(k): template for k in ("state_template", "brightness_template",
                                                                "red_template", "green_template", "blue_template",
                                                                "color_temp_template", "effect_template")},
                         vol.Optional("color_temp_kelvin"): boolean, vol.Optional("effect_list"): [_string],
                         **{vol.Optional(k): positive_int for k in ("max_kelvin", "min_kelvin", "max_mireds",
                                                                    "min_mireds")}}),
}


def expand(payload):
    """An abbreviated payload -> HA's full keys, "~" replaced, as discovery.py does it."""
    out = {ABBREVIATIONS.get(k, k): v for k, v in payload.items()}
    for key, table in (("device", DEVICE_ABBREVIATIONS), ("origin", ORIGIN_ABBREVIATIONS)):
        if isinstance(out.get(key), dict):
            out[key] = {table.get(k, k): v for k, v in out[key].items()}
    if isinstance(out.get("availability"), list):
        out["availability"] = [{ABBREVIATIONS.get(k, k): v for k, v in a.items()} for a in out["availability"]]
    if "~" in out:
        base = out.pop("~")
        for k, v in list(out.items()):
            if isinstance(v, str) and v and k.endswith("topic"):
                if v[0] == "~":
                    v = base + v[1:]
                if v[-1] == "~":
                    v = v[:-1] + base
                out[k] = v
        for a in out.get("availability", []):
            if a.get("topic", "")[:1] == "~":
                a["topic"] = base + a["topic"][1:]
    return out


def parse_topic(topic):
    m = TOPIC.match(topic)
    if not m:
        raise Invalid(f"{topic!r} is not <prefix>/<component>/[<node_id>/]<object_id>/config")
    return m["component"], m["node_id"], m["object_id"]


def validate(topic, raw):
    """Raise Invalid unless (topic, payload) is a discovery config HA accepts; returns the
    component and the config with full keys. An empty payload (a removal) returns None."""
    comp, _, _ = parse_topic(topic)
    if comp not in SCHEMAS:
        raise Invalid(f"{comp} is not a component this validator knows")
    if raw == "":
        return comp, None
    try:
        payload = json.loads(raw)
    except ValueError as err:
        raise Invalid(f"{topic}: not JSON: {err}") from err
    if not isinstance(payload, dict):
        raise Invalid(f"{topic}: the payload is not a JSON object")
    cfg = expand(payload)
    try:
        cfg = SCHEMAS[comp](cfg)
    except vol.Invalid as err:
        raise Invalid(f"{topic}: {err}") from err
    if "device" in cfg and "unique_id" not in cfg:  # entity.py: device info is used with a unique_id only
        raise Invalid(f"{topic}: an entity with a device needs a unique_id")
    return comp, cfg


def _ha_round(value, precision=0):
    # helpers/template forgiving_round ("common": Python's round), an int at precision 0
    value = round(float(value), precision)
    return int(value) if precision == 0 else value


def render(template, **values):
    """Render a template as HA renders MQTT templates (value_json: the decoded message;
    command templates: the call's values and `this`, the entity's state)."""
    env = jinja2.Environment()
    env.filters["round"] = _ha_round
    return env.from_string(template).render(**values).strip()
