# Logical pin names -> GPIO numbers, per chip family, overridable by the
# `pinmap` config key ("name:num,name:num"). boards/*/board.json holds the same
# maps for the host tools; tests check that the two agree.
import sys

_ESP8266 = (
    ("builtin", 16), ("pwm_0", 15), ("pwm_1", 13), ("pwm_2", 2), ("pwm_3", 0),
    ("i2c_sda", 4), ("i2c_scl", 5), ("pwm_4", 12), ("simple_0", 16),
    ("pwm_5", 14), ("simple_1", 10), ("adc_0", 0), ("simple_2", 9),
)
_ESP32 = (
    ("builtin", 2), ("pwm_0", 15), ("pwm_1", 25), ("pwm_2", 26), ("pwm_3", 27),
    ("i2c_sda", 21), ("i2c_scl", 22), ("pwm_4", 4), ("simple_0", 18),
    ("pwm_5", 19), ("simple_1", 23), ("adc_0", 36), ("simple_2", 5),
)


def table():
    return _ESP8266 if sys.platform == "esp8266" else _ESP32


def pin(name):
    """GPIO number of a logical pin name (or of a plain number)."""
    if isinstance(name, int):
        return name
    from micros import conf

    over = conf.get("pinmap")
    if over != "n/a":
        for item in over.split(","):
            k, _, v = item.partition(":")
            if k.strip() == name:
                return int(v)
    for k, v in table():
        if k == name:
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
