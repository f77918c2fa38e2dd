# Logical pin names -> GPIO numbers, per chip family, overridable by the
# `pinmap` config key ("name:num,name:num"). boards/*/board.json holds the same
# maps for the host tools; tests check that the two agree.
import sys

# "name:gpio,..." strings rather than tuples: they stay in flash when frozen.
_ESP8266 = (
    "builtin:16,pwm_0:15,pwm_1:13,pwm_2:2,pwm_3:0,i2c_sda:4,i2c_scl:5,pwm_4:12,"
    "simple_0:16,pwm_5:14,simple_1:10,adc_0:0,simple_2:9"
)
_ESP32 = (
    "builtin:2,pwm_0:15,pwm_1:25,pwm_2:26,pwm_3:27,i2c_sda:21,i2c_scl:22,pwm_4:4,"
    "simple_0:18,pwm_5:19,simple_1:23,adc_0:36,simple_2:5"
)


def table():
    """The built-in map of this chip family as {name: gpio}."""
    return dict(_find(_ESP8266 if sys.platform == "esp8266" else _ESP32, None))


def _find(text, name):
    # yields (name, gpio) pairs of a "name:gpio,..." string; just one if name is given
    for item in text.split(","):
        k, _, v = item.partition(":")
        k = k.strip()
        if name is None or k == name:
            yield k, int(v)


def pin(name):
    """GPIO number of a logical pin name (or of a plain number)."""
    if isinstance(name, int):
        return name
    from micros import conf

    over = conf.get("pinmap")
    for text in (over if over != "n/a" else "", _ESP8266 if sys.platform == "esp8266" else _ESP32):
        for _, v in _find(text, name):
            return v
    raise ValueError("unknown pin %s" % name)


def check(key, val):
    # conf hook for pinmap: "name:num,..." with whole numbers
    if val == "n/a":
        return
    for item in val.split(","):
        k, sep, v = item.partition(":")
        try:
            int(v)
        except ValueError:
            sep = ""
        if not sep or not k.strip():
            from micros.conf import ConfError

            raise ConfError("pinmap is name:gpio[,name:gpio...], not %r" % item)
