# Logical pin names -> GPIO numbers: the board's own table (micros_board.PINS,
# frozen from boards/<board>/micros_board.py at build time; the same map as
# board.json), overridable by the `pinmap` config key ("name:num,name:num").


def board(name, default):
    """A fact of the board from micros_board; default where the module is
    missing (stock firmware with the core in lib/: flashing writes the pins
    into pinmap)."""
    import sys

    try:
        import micros_board
    except ImportError:
        return default
    # dropped again at once: its frozen strings stay in flash, its module costs RAM
    del sys.modules["micros_board"]
    return getattr(micros_board, name, default)


def table():
    """The board's built-in map as {name: gpio}."""
    return dict(_find(board("PINS", ""), None))


def _find(text, name):
    # yields (name, gpio) pairs of a "name:gpio,..." string; just one if name is given
    for item in text.split(","):
        if not item:
            continue
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
    for text in (over if over != "n/a" else "", board("PINS", "")):
        for _, v in _find(text, name):
            return v
    # a name the board leaves out (ESP8266, C3: no simple_1/simple_2, docs/boards.md)
    raise ValueError("no %s pin on this board: add %s:<gpio> to pinmap" % (name, name))


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
