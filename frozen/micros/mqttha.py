# Home Assistant MQTT discovery: the retained config messages that make a node appear in
# Home Assistant with no YAML. Loaded by micros.mqtt on each connect and dropped after.
# Keys are Home Assistant's documented abbreviations (stat_t = state_topic, ...), to keep
# the messages short. Entities follow the node's loaded Load Modules: the system sensors
# and reboot button always, a light when LM_gpio is loaded, and whatever a loaded LM
# lists in its own discovery() -> [(component, object_id, {fields})].
import json
import sys
from micros import conf

# light over "gpio RGB r g b" (levels 0..1000), HA's template schema (colour 0..255)
_ON = "gpio RGB" + "".join(
    " {{ ((%s|default(255))*(brightness|default(255))*1000/65025)|round|int }}" % c for c in ("red", "green", "blue"))
_LIGHT = {
    "schema": "template",
    "cmd_on_tpl": _ON,
    "cmd_off_tpl": "gpio RGB_deinit",
    "stat_tpl": "{{ 'on' if value_json.gpio.rgb|max > 0 else 'off' }}",
    "r_tpl": "{{ (value_json.gpio.rgb[0]*255/1000)|round|int }}",
    "g_tpl": "{{ (value_json.gpio.rgb[1]*255/1000)|round|int }}",
    "b_tpl": "{{ (value_json.gpio.rgb[2]*255/1000)|round|int }}",
}


def _node():
    # a discovery node_id is [a-zA-Z0-9_-]
    return "".join(c if c.isalpha() or c.isdigit() or c in "_-" else "_" for c in conf.get("devfid"))


def entities():
    """(component, object_id, fields) of every entity of this node."""
    yield "sensor", "memfree", {"name": "Free heap", "val_tpl": "{{ value_json.memfree }}", "unit_of_meas": "B",
                                "dev_cla": "data_size", "stat_cla": "measurement", "ent_cat": "diagnostic"}
    yield "sensor", "rssi", {"name": "WiFi RSSI", "val_tpl": "{{ value_json.rssi }}", "unit_of_meas": "dBm",
                             "dev_cla": "signal_strength", "stat_cla": "measurement", "ent_cat": "diagnostic"}
    yield "sensor", "uptime", {"name": "Uptime", "val_tpl": "{{ value_json.uptime }}", "unit_of_meas": "s",
                               "dev_cla": "duration", "stat_cla": "measurement", "ent_cat": "diagnostic"}
    yield "button", "reboot", {"name": "Reboot", "pl_prs": "reboot", "dev_cla": "restart", "ent_cat": "config"}
    for full in list(sys.modules):
        i = full.find("LM_")
        if i < 0:
            continue
        if full[i + 3 :] == "gpio":
            yield "light", "rgb", dict(_LIGHT, name="RGB")
        f = getattr(sys.modules[full], "discovery", None)
        if f:
            yield from f()


def configs(base):
    """(topic, payload) of each retained config message; base is "<prefix>/<devfid>/"."""
    from micros import VERSION

    uid = conf.get("hwuid").replace(":", "")
    if uid == "n/a":
        uid = _node()
    dev = {"ids": [uid], "name": conf.get("devfid"), "mf": "micrOS", "mdl": "micrOS node (%s)" % sys.platform,
           "sw": VERSION}
    if ":" in conf.get("hwuid"):
        dev["cns"] = [["mac", conf.get("hwuid")]]
    pfx = conf.get("mqttdisc")
    node = _node()
    for comp, obj, fields in entities():
        fields["uniq_id"] = "%s_%s" % (uid, obj)
        fields["avty_t"] = base + "status"
        fields["dev"] = dev
        if comp in ("sensor", "binary_sensor", "light"):
            fields["stat_t"] = base + "state"
        if comp in ("button", "switch", "light"):
            fields["cmd_t"] = base + "cmd"
        yield "%s/%s/%s/%s/config" % (pfx, comp, node, obj), json.dumps(fields)


def check(key, val):
    """conf's hook for mqttpfx and mqttdisc: a topic level of our own."""
    if "+" in val or "#" in val or val[:1] == "/" or val[-1:] == "/":
        raise conf.ConfError("%s is a topic level: no + or #, no leading or trailing /" % key)
