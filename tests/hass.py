"""Home Assistant MQTT discovery rules, written from HA's documentation
(https://www.home-assistant.io/integrations/mqtt/#mqtt-discovery and the per-platform pages
sensor.mqtt, binary_sensor.mqtt, button.mqtt, switch.mqtt, light.mqtt): the topic format,
the documented abbreviations, required keys per component, the device block, and no keys
HA does not know (its schemas refuse extra keys). Templates are rendered with Jinja2, as HA
renders them, against the node's real state message."""
import json
import re

import jinja2

# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config; ids are [a-zA-Z0-9_-]
TOPIC = re.compile(r"^(?P<prefix>[^/#+]+)/(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?"
                   r"(?P<object_id>[a-zA-Z0-9_-]+)/config$")

# the abbreviations documented for discovery payloads (the part micrOS may use)
ABBREVIATIONS = {
    "avty_t": "availability_topic", "b_tpl": "blue_template", "cmd_off_tpl": "command_off_template",
    "cmd_on_tpl": "command_on_template", "cmd_t": "command_topic", "dev": "device", "dev_cla": "device_class",
    "ent_cat": "entity_category", "g_tpl": "green_template", "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available", "pl_off": "payload_off", "pl_on": "payload_on",
    "pl_prs": "payload_press", "r_tpl": "red_template", "stat_cla": "state_class", "stat_t": "state_topic",
    "stat_tpl": "state_template", "uniq_id": "unique_id", "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template", "stat_val_tpl": "state_value_template", "bri_tpl": "brightness_template",
    "json_attr_t": "json_attributes_topic", "ic": "icon", "qos": "qos", "ret": "retain",
}
DEVICE_ABBREVIATIONS = {"ids": "identifiers", "cns": "connections", "mf": "manufacturer", "mdl": "model",
                        "sw": "sw_version", "hw": "hw_version", "name": "name", "sa": "suggested_area",
                        "cu": "configuration_url"}

COMMON = {"name", "unique_id", "availability_topic", "payload_available", "payload_not_available", "device",
          "entity_category", "icon", "qos", "json_attributes_topic", "enabled_by_default", "object_id"}
COMPONENTS = {
    "sensor": ({"state_topic"}, {"value_template", "unit_of_measurement", "device_class", "state_class",
                                 "expire_after", "force_update", "suggested_display_precision"}),
    "binary_sensor": ({"state_topic"}, {"value_template", "device_class", "payload_on", "payload_off",
                                        "expire_after", "off_delay"}),
    "button": ({"command_topic"}, {"payload_press", "device_class", "command_template", "retain"}),
    "switch": ({"command_topic"}, {"state_topic", "value_template", "payload_on", "payload_off", "state_on",
                                   "state_off", "device_class", "retain", "optimistic"}),
    # template schema: command_topic, command_on_template and command_off_template are required
    "light": ({"command_topic"}, {"schema", "state_topic", "command_on_template", "command_off_template",
                                  "state_template", "red_template", "green_template", "blue_template",
                                  "brightness_template", "optimistic", "retain"}),
}
LIGHT_TEMPLATE_REQUIRED = {"command_topic", "command_on_template", "command_off_template"}
ENTITY_CATEGORIES = {"config", "diagnostic"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
# sensor device classes micrOS uses, with the units HA accepts for them
SENSOR_UNITS = {"data_size": {"bit", "kbit", "Mbit", "B", "kB", "KiB", "MB", "MiB"},
                "signal_strength": {"dB", "dBm"}, "duration": {"d", "h", "min", "s", "ms"},
                "temperature": {"°C", "°F", "K"}, "humidity": {"%"}, "distance": {"km", "m", "cm", "mm"}}
BUTTON_CLASSES = {"identify", "restart", "update"}


class Invalid(AssertionError):
    pass


def expand(payload):
    """An abbreviated payload -> full keys (device keys too), as HA's discovery does."""
    out = {ABBREVIATIONS.get(k, k): v for k, v in payload.items()}
    if isinstance(out.get("device"), dict):
        out["device"] = {DEVICE_ABBREVIATIONS.get(k, k): v for k, v in out["device"].items()}
    return out


def _topic_ok(t, what, publish):
    if not isinstance(t, str) or not t or len(t.encode()) > 65535 or "\0" in t:
        raise Invalid(f"{what} is not a topic: {t!r}")
    if publish and ("+" in t or "#" in t):
        raise Invalid(f"{what} {t!r}: a topic HA publishes to has no wildcards")


def validate(topic, raw):
    """Raise Invalid unless (topic, payload) is a discovery message HA accepts; returns the
    component and the expanded config."""
    m = TOPIC.match(topic)
    if not m:
        raise Invalid(f"{topic!r} is not <prefix>/<component>/[<node_id>/]<object_id>/config")
    comp = m["component"]
    if comp not in COMPONENTS:
        raise Invalid(f"{comp} is not a component micrOS announces")
    cfg = expand(json.loads(raw))
    required, own = COMPONENTS[comp]
    if comp == "light" and cfg.get("schema") == "template":
        required = LIGHT_TEMPLATE_REQUIRED
    missing = required - set(cfg)
    if missing:
        raise Invalid(f"{topic}: missing required {sorted(missing)}")
    extra = set(cfg) - COMMON - own - COMPONENTS[comp][0]
    if extra:
        raise Invalid(f"{topic}: keys HA does not know for {comp}: {sorted(extra)}")
    for k in ("state_topic", "availability_topic"):
        if k in cfg:
            _topic_ok(cfg[k], k, publish=False)
    if "command_topic" in cfg:
        _topic_ok(cfg["command_topic"], "command_topic", publish=True)
    if "device" in cfg:
        dev = cfg["device"]
        if not (dev.get("identifiers") or dev.get("connections")):
            raise Invalid(f"{topic}: a device needs identifiers or connections")
        if "unique_id" not in cfg:
            raise Invalid(f"{topic}: an entity with a device needs a unique_id")
        bad = set(dev) - set(DEVICE_ABBREVIATIONS.values())
        if bad:
            raise Invalid(f"{topic}: unknown device keys {sorted(bad)}")
        for pair in dev.get("connections", []):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise Invalid(f"{topic}: a connection is a [type, id] pair")
    if cfg.get("entity_category", "config") not in ENTITY_CATEGORIES:
        raise Invalid(f"{topic}: entity_category {cfg['entity_category']!r}")
    if comp == "sensor":
        if cfg.get("state_class", "measurement") not in STATE_CLASSES:
            raise Invalid(f"{topic}: state_class {cfg['state_class']!r}")
        dc = cfg.get("device_class")
        if dc and cfg.get("unit_of_measurement") not in SENSOR_UNITS.get(dc, ()):
            raise Invalid(f"{topic}: unit {cfg.get('unit_of_measurement')!r} is not one of {dc}'s")
    if comp == "button" and cfg.get("device_class", "restart") not in BUTTON_CLASSES:
        raise Invalid(f"{topic}: button device_class {cfg['device_class']!r}")
    for k, v in cfg.items():
        if k.endswith("_template"):
            try:
                jinja2.Environment().parse(v)
            except jinja2.TemplateSyntaxError as err:
                raise Invalid(f"{topic}: {k} is not a valid template: {err}") from err
    return comp, cfg


def render(template, **values):
    """Render a template as HA does for MQTT (value_json: the decoded message)."""
    return jinja2.Environment().from_string(template).render(**values).strip()
