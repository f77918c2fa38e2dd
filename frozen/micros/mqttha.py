# Home Assistant MQTT discovery: the retained config messages that make a node appear in
# Home Assistant with no YAML. Loaded by micros.mqtt to announce and dropped after.
# Heap: no config is ever built as one string. Each is a bytes template (a constant: in
# flash when frozen, one object per template when loaded from a file) whose bytes \x01..\x0c
# stand for values; announce() computes its length, then streams it through a 128-byte
# buffer of its own. Keys are HA's abbreviations (homeassistant/components/mqtt/abbreviations.py);
# topics are relative to "~", the node's "<prefix>/<devfid>/". Entities follow the loaded
# Load Modules (_ENT): announced when the LM is loaded, removed (an empty retained config)
# when it is unloaded or not loaded at connect. Commands are shell lines on ~cmd, states
# are read from the telemetry on ~state.
import json
import sys
from micropython import const
from micros import conf

_UP = const(0)  # micros.mqtt's _st index: connected
_BUF = const(128)  # a config goes out through this, in writes of up to its size

# "<lm> <component> <object_id>": the entities of the built-in Load Modules
_ENT = ("gpio light rgb", "light light light", "neopixel light neopixel", "dimmer light dimmer",
        "switch switch switch", "air sensor temperature", "air sensor humidity",
        "distance_HCSR04 sensor distance", "motion_sensor binary_sensor motion")
_LMS = "gpio light neopixel dimmer switch air distance_HCSR04 motion_sensor"

# every config: \x01 "~" (JSON), \x02 the hwuid, \x03 the object id, \x04 the device (JSON)
_HEAD = b'{"~":\x01,"uniq_id":"\x02_\x03","avty_t":"~status","dev":\x04'
# a sensor: \x05 name, \x06 what it reads in the telemetry, \x07 unit, \x08 device class,
# \x09 more fields (its entity category)
_SENSOR = (b',"stat_t":"~state","name":"\x05","val_tpl":"{{value_json.\x06}}","unit_of_meas":"\x07",'
           b'"dev_cla":"\x08","stat_cla":"measurement"\x09}')
_REBOOT = b',"cmd_t":"~cmd","name":"Reboot","pl_prs":"reboot","dev_cla":"restart","ent_cat":"config"}'
# An RGB light in HA's template schema: \x05 the LM, \x06 its colour call, \x07 its full level,
# \x08 on, \x09 off, \x0a its colour as a list (v: its telemetry), \x0b "it is on", \x0c its name.
# HA sends red/green/blue at full value and the brightness apart (there is a brightness
# template); either may be missing, then the light's current one (`this`, HA's state of the
# entity) is kept; a bare "on" is the LM's own (its cached colour).
_RGB = (b',"stat_t":"~state","cmd_t":"~cmd","schema":"template","name":"\x0c",'
        b'"cmd_on_tpl":"{%if red is defined or brightness is defined%}'
        b"{%set c=[red,green,blue] if red is defined else this.attributes.rgb_color or [255,255,255]%}"
        b"{%set b=brightness if brightness is defined else this.attributes.brightness or 255%}"
        b'\x06{%for x in c%} {{(x*b*\x07/65025)|round|int}}{%endfor%}{%else%}\x08{%endif%}",'
        b'"cmd_off_tpl":"\x09",'
        b"\"stat_tpl\":\"{%set v=value_json.\x05%}{%set c=\x0a%}{{'on' if \x0b else 'off'}}\","
        b'"bri_tpl":"{%set v=value_json.\x05%}{%set c=\x0a%}{{(c|max*255/\x07)|round|int}}",'
        b'"r_tpl":"{%set v=value_json.\x05%}{%set c=\x0a%}{{(c[0]*255/(c|max or 1))|round|int}}",'
        b'"g_tpl":"{%set v=value_json.\x05%}{%set c=\x0a%}{{(c[1]*255/(c|max or 1))|round|int}}",'
        b'"b_tpl":"{%set v=value_json.\x05%}{%set c=\x0a%}{{(c[2]*255/(c|max or 1))|round|int}}"}')
_DIMMER = (b',"stat_t":"~state","cmd_t":"~cmd","schema":"template","name":"Dimmer",'
           b'"cmd_on_tpl":"{%if brightness is defined%}dimmer set_value {{(brightness*1000/255)|round|int}}'
           b'{%else%}dimmer toggle True{%endif%}","cmd_off_tpl":"dimmer toggle False",'
           b"\"stat_tpl\":\"{{'on' if value_json.dimmer.s else 'off'}}\","
           b'"bri_tpl":"{{(value_json.dimmer.value*255/1000)|round|int}}"}')
_SWITCH = (b',"stat_t":"~state","cmd_t":"~cmd","name":"Switch","pl_on":"switch set_state 1",'
           b'"pl_off":"switch set_state 0","stat_on":"1","stat_off":"0","val_tpl":"{{value_json.switch.s}}"}')
_MOTION = (b',"stat_t":"~state","name":"Motion","dev_cla":"motion","pl_on":"1","pl_off":"0",'
           b'"val_tpl":"{{value_json.motion_sensor.m}}"}')
_DIAG = ',"ent_cat":"diagnostic"'


def _body(obj):
    """(template, its values \x05.. as one string, ";" between) of a built-in entity."""
    if obj == "rgb":
        return _RGB, "gpio;gpio RGB;1000;gpio RGB 1000 1000 1000;gpio RGB_deinit;v.rgb;c|max;RGB"
    if obj == "light":
        return _RGB, "light;light rgb;1000;light toggle True;light toggle False;[v.r,v.g,v.b];v.s;Light"
    if obj == "neopixel":
        return _RGB, ("neopixel;neopixel neopixel;255;neopixel toggle True;neopixel toggle False;[v.r,v.g,v.b];v.s;"
                      "NeoPixel")
    if obj == "dimmer":
        return _DIMMER, ""
    if obj == "switch":
        return _SWITCH, ""
    if obj == "motion":
        return _MOTION, ""
    if obj == "reboot":
        return _REBOOT, ""
    # sensors: a unit HA accepts for the device class (sensor/const.py DEVICE_CLASS_UNITS)
    if obj == "temperature":
        return _SENSOR, "Temperature;air.temp;\\u00b0C;temperature;"
    if obj == "humidity":
        return _SENSOR, "Humidity;air.hum;%;humidity;"
    if obj == "distance":
        return _SENSOR, "Distance;distance_HCSR04.mm;mm;distance;"
    if obj == "memfree":
        return _SENSOR, "Free heap;memfree;B;data_size;" + _DIAG
    if obj == "rssi":
        return _SENSOR, "WiFi RSSI;rssi;dBm;signal_strength;" + _DIAG
    return _SENSOR, "Uptime;uptime;s;duration;" + _DIAG


def _entities(old, now):
    """(component, object_id, on) of the entities to announce (on: True, or an LM's own fields)
    or remove (on: False)."""
    if old is None:
        yield "sensor", "memfree", True
        yield "sensor", "rssi", True
        yield "sensor", "uptime", True
        yield "button", "reboot", True
    was = old or ""
    for row in _ENT:
        lm, comp, obj = row.split()
        on = _has(now, lm)
        if old is None or on != _has(was, lm):
            yield comp, obj, on
    # an LM of the user's may list its own: discovery() -> [(component, object_id, {fields})]
    i = 0
    while i < len(now):
        j = now.find(" ", i)
        j = len(now) if j < 0 else j
        lm = now[i:j]
        i = j + 1
        if not _has(was, lm) and not _has(_LMS, lm):
            m = sys.modules.get("LM_" + lm) or sys.modules.get("micros.LM_" + lm)
            try:
                ents = getattr(m, "discovery", tuple)()
            except Exception as e:  # an LM's failure must not stop the announcement
                print("mqttha: %s discovery: %s" % (lm, e))
                ents = ()
            for comp, obj, f in ents:
                yield comp, obj, f


def _has(names, name):
    # name is one of the space-separated names (no list of them made)
    i = names.find(name)
    while i >= 0:
        j = i + len(name)
        if (i == 0 or names[i - 1] == " ") and (j == len(names) or names[j] == " "):
            return True
        i = names.find(name, j)
    return False


def _size(tpl, vals):
    # the template's length with its bytes below 0x10 replaced by vals[byte - 1]
    n = len(tpl)
    for c in tpl:
        if c < 0x10:
            n += len(vals[c - 1]) - 1
    return n


async def _tpl(m, buf, at, tpl, vals):
    # tpl after buf[:at], its bytes below 0x10 replaced by vals[byte - 1], each full buf
    # written out (the caller holds the socket); the new at
    mv = memoryview(tpl)
    n = len(tpl)
    i = 0
    for j in range(n + 1):
        if j < n and tpl[j] >= 0x10:
            continue
        for p in (mv[i:j], vals[tpl[j] - 1] if j < n else b""):
            p = memoryview(p)
            while len(p):
                k = min(len(p), _BUF - at)
                buf[at : at + k] = p[:k]
                at += k
                p = p[k:]
                if at == _BUF:
                    await m.put(buf)
                    at = 0
        i = j + 1
    return at


async def announce(base, now, old=None):
    """Publish the retained config of each entity to announce or remove, one at a time: all
    when old is None (a new connection), else those of the LMs loaded or unloaded since. base
    is "<prefix>/<devfid>/"; now/old: the loaded LMs (micros.mqtt.lms()) now and at the last
    announcement. Each is a retained QoS 0 PUBLISH whose length is computed first, then
    streamed through a 128-byte buffer, holding micros.mqtt's socket (micros.mqtt calls this)."""
    from micros import VERSION
    from micros import mqtt as m

    hw = conf.get("hwuid")
    node = "".join(c if c.isalpha() or c.isdigit() or c in "_-" else "_" for c in conf.get("devfid"))  # [a-zA-Z0-9_-]
    uid = hw.replace(":", "") if hw != "n/a" else node
    dev = {"ids": [uid], "name": conf.get("devfid"), "mf": "micrOS",
           "mdl": getattr(sys.implementation, "_machine", sys.platform), "sw": VERSION}
    if ":" in hw:
        dev["cns"] = [["mac", hw]]
    # \x01 "~", \x02 the hwuid, \x03 the object id, \x04 the device; \x05.. the entity's own
    vals = [json.dumps(base).encode(), uid.encode(), b"", json.dumps(dev).encode()]
    dev = uid = None
    pfx = conf.get("mqttdisc")
    buf = bytearray(_BUF)
    for comp, obj, on in _entities(old, now):
        t = ("%s/%s/%s/%s/config" % (pfx, comp, node, obj)).encode()
        while len(vals) > 4:
            vals.pop()
        vals[2] = obj.encode()
        if on is True:
            body, extra = _body(obj)
            vals.extend(extra.encode().split(b";"))
        elif on is not False:  # an LM's own fields (a dict), with the topics its component has
            body = b"\x05\x06\x07\x08"
            vals.append(b"" if comp == "button" else b',"stat_t":"~state"')
            vals.append(b',"cmd_t":"~cmd"' if comp in ("button", "switch", "light") else b"")
            vals.append(b"," if on else b"")
            vals.append(json.dumps(on)[1:].encode())
        else:  # removed: an empty config
            body = None
        n = _size(_HEAD, vals) + _size(body, vals) if body else 0
        if not m._st[_UP]:  # not connected: a QoS 0 message is not kept
            return
        await m.take()
        try:
            buf[0] = 0x31  # PUBLISH, retained
            at = m.rlen(buf, 1, 2 + len(t) + n)
            buf[at] = len(t) >> 8
            buf[at + 1] = len(t) & 0xFF
            at = await _tpl(m, buf, at + 2, b"\x01", (t,))  # the topic
            if body:
                at = await _tpl(m, buf, at, _HEAD, vals)
                at = await _tpl(m, buf, at, body, vals)
            if at:
                await m.put(memoryview(buf)[:at])
        finally:
            m.release()
        t = body = None


def check(key, val):
    """conf's hook for mqttpfx and mqttdisc: a topic level of our own."""
    if "+" in val or "#" in val or val[:1] == "/" or val[-1:] == "/":
        raise conf.ConfError("%s is a topic level: no + or #, no leading or trailing /" % key)
