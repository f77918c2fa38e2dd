# Home Assistant MQTT discovery: the retained config messages that make a node appear in
# Home Assistant with no YAML. Loaded by micros.mqtt to announce and dropped after; each
# message is built and sent one at a time (a generator), no list of them is kept.
# Keys are HA's abbreviations (homeassistant/components/mqtt/abbreviations.py) and topics
# are relative to "~" (the node's "<prefix>/<devfid>/"), to keep the messages short.
# Entities follow the loaded Load Modules (_ENT): an LM's entities are announced when it
# is loaded and removed (an empty retained config) when it is unloaded or not loaded at
# connect. Commands are shell lines on ~cmd; states are read from the telemetry on ~state.
import json
import sys
from micros import conf

# "<lm> <component> <object_id>": the entities of the built-in Load Modules
_ENT = ("gpio light rgb", "light light light", "neopixel light neopixel", "dimmer light dimmer",
        "switch switch switch", "air sensor temperature", "air sensor humidity",
        "distance_HCSR04 sensor distance", "motion_sensor binary_sensor motion")
# an RGB light as HA's template schema sees it: HA sends red/green/blue at full value and
# the brightness apart (there is a brightness template), either may be missing: then the
# light's current colour/brightness (this.attributes) is kept; a bare "on" is the LM's own.
_RGB_ON = ("{%%if red is defined or brightness is defined%%}"
           "{%%set c=[red,green,blue] if red is defined else this.attributes.rgb_color or [255,255,255]%%}"
           "{%%set b=brightness if brightness is defined else this.attributes.brightness or 255%%}"
           "%s{%%for x in c%%} {{(x*b*%d/65025)|round|int}}{%%endfor%%}{%%else%%}%s{%%endif%%}")
# the state: v is the LM's telemetry, c its colour as a list
_RGB_V = "{%%set v=value_json.%s%%}{%%set c=%s%%}"


def _node():
    # a discovery node_id is [a-zA-Z0-9_-]
    return "".join(c if c.isalpha() or c.isdigit() or c in "_-" else "_" for c in conf.get("devfid"))


def _light(lm, call, on, off, scale, colour, lit):
    v = _RGB_V % (lm, colour)
    f = {"cmd_on_tpl": _RGB_ON % (call, scale, on), "cmd_off_tpl": off,
         "stat_tpl": v + "{{'on' if %s else 'off'}}" % lit,
         "bri_tpl": v + "{{(c|max*255/%d)|round|int}}" % scale}
    for k, i in (("r_tpl", 0), ("g_tpl", 1), ("b_tpl", 2)):
        f[k] = v + "{{(c[%d]*255/(c|max or 1))|round|int}}" % i
    return f


def _fields(lm, obj):
    """The fields of one built-in entity (without topics, device, ids)."""
    if lm == "gpio":
        return _light(lm, "gpio RGB", "gpio RGB 1000 1000 1000", "gpio RGB_deinit", 1000, "v.rgb", "c|max")
    if lm == "light":
        return _light(lm, "light rgb", "light toggle True", "light toggle False", 1000, "[v.r,v.g,v.b]", "v.s")
    if lm == "neopixel":
        return _light(lm, "neopixel neopixel", "neopixel toggle True", "neopixel toggle False", 255,
                      "[v.r,v.g,v.b]", "v.s")
    if lm == "dimmer":
        return {"cmd_on_tpl": "{%if brightness is defined%}dimmer set_value {{(brightness*1000/255)|round|int}}"
                              "{%else%}dimmer toggle True{%endif%}",
                "cmd_off_tpl": "dimmer toggle False",
                "stat_tpl": "{{'on' if value_json.dimmer.s else 'off'}}",
                "bri_tpl": "{{(value_json.dimmer.value*255/1000)|round|int}}"}
    if lm == "switch":
        return {"pl_on": "switch set_state 1", "pl_off": "switch set_state 0", "stat_on": "1", "stat_off": "0",
                "val_tpl": "{{value_json.switch.s}}"}
    if lm == "motion_sensor":
        return {"dev_cla": "motion", "pl_on": "1", "pl_off": "0", "val_tpl": "{{value_json.motion_sensor.m}}"}
    # sensors: the unit and device class HA accepts together (sensor/const.py DEVICE_CLASS_UNITS)
    key, unit = {"temperature": ("temp", "°C"), "humidity": ("hum", "%"), "distance": ("mm", "mm")}[obj]
    return {"dev_cla": obj, "unit_of_meas": unit, "stat_cla": "measurement",
            "val_tpl": "{{value_json.%s.%s}}" % (lm, key)}


def _system():
    yield "sensor", "memfree", {"name": "Free heap", "val_tpl": "{{value_json.memfree}}", "unit_of_meas": "B",
                                "dev_cla": "data_size", "stat_cla": "measurement", "ent_cat": "diagnostic"}
    yield "sensor", "rssi", {"name": "WiFi RSSI", "val_tpl": "{{value_json.rssi}}", "unit_of_meas": "dBm",
                             "dev_cla": "signal_strength", "stat_cla": "measurement", "ent_cat": "diagnostic"}
    yield "sensor", "uptime", {"name": "Uptime", "val_tpl": "{{value_json.uptime}}", "unit_of_meas": "s",
                               "dev_cla": "duration", "stat_cla": "measurement", "ent_cat": "diagnostic"}
    yield "button", "reboot", {"name": "Reboot", "pl_prs": "reboot", "dev_cla": "restart", "ent_cat": "config"}


def _entities(old, now):
    """(component, object_id, fields or None to remove) of the entities to announce: all
    when old is None (a new connection), else those of LMs loaded or unloaded since."""
    if old is None:
        yield from _system()
    now = now.split()
    was = old.split() if old else ()
    known = []
    for row in _ENT:
        lm, comp, obj = row.split()
        known.append(lm)
        on = lm in now
        if old is None or on != (lm in was):
            yield comp, obj, _fields(lm, obj) if on else None
    # an LM of the user's may list its own: discovery() -> [(component, object_id, {fields})]
    for lm in now:
        if lm not in known and lm not in was:
            m = sys.modules.get("LM_" + lm) or sys.modules.get("micros.LM_" + lm)
            f = getattr(m, "discovery", None)
            if f:
                yield from f()


def configs(base, now, old=None):
    """(topic, payload) of each retained config message to publish, one at a time; base is
    "<prefix>/<devfid>/"; now/old: the loaded LMs (micros.mqtt.lms()) now and at the last
    announcement (None: none yet on this connection). An empty payload removes an entity."""
    from micros import VERSION

    hw = conf.get("hwuid")
    node = _node()
    uid = hw.replace(":", "") if hw != "n/a" else node
    dev = {"ids": [uid], "name": conf.get("devfid"), "mf": "micrOS",
           "mdl": getattr(sys.implementation, "_machine", sys.platform), "sw": VERSION}
    if ":" in hw:
        dev["cns"] = [["mac", hw]]
    pfx = conf.get("mqttdisc")
    for comp, obj, fields in _entities(old, now):
        t = "%s/%s/%s/%s/config" % (pfx, comp, node, obj)
        if fields is None:
            yield t, ""
            continue
        fields["~"] = base
        fields["uniq_id"] = "%s_%s" % (uid, obj)
        fields["avty_t"] = "~status"
        fields["dev"] = dev
        if comp != "button":
            fields["stat_t"] = "~state"
        if comp in ("button", "switch", "light"):
            fields["cmd_t"] = "~cmd"
        if comp == "light":
            fields["schema"] = "template"
        yield t, json.dumps(fields)
        fields = None


def check(key, val):
    """conf's hook for mqttpfx and mqttdisc: a topic level of our own."""
    if "+" in val or "#" in val or val[:1] == "/" or val[-1:] == "/":
        raise conf.ConfError("%s is a topic level: no + or #, no leading or trailing /" % key)
