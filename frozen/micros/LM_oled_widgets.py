# Load Module (original micrOS): ready-made pages for the 128x64 OLED
# (LM_oled_128x64i2c): a clock page and a debug page, e.g. as timirqcbf.
def _o():
    from micros import call

    return call.module("oled_128x64i2c")


def simple_page():
    """Date, time and the node's name."""
    from micros import conf, core

    t = core.localtime()
    o = _o()
    o.clean(show=False)
    o.text("%d-%02d-%02d" % t[:3], 0, 0, show=False)
    o.text("%02d:%02d:%02d" % t[3:6], 0, 16, show=False)
    o.text(conf.get("devfid"), 0, 40, show=False)
    return o.show()


def show_debug_page():
    """Name, IP, network mode and free heap."""
    import gc
    from micros import conf

    o = _o()
    o.clean(show=False)
    o.text(conf.get("devfid"), 0, 0, show=False)
    o.text(conf.get("devip"), 0, 16, show=False)
    o.text("mode: %s" % conf.get("nwmd"), 0, 32, show=False)
    o.text("mem: %d" % gc.mem_free(), 0, 48, show=False)
    return o.show()


def toggle_invert():
    """Swap light and dark."""
    return _o().invert()


def help():
    """This module's functions, as they are called."""
    return ("simple_page\n" "show_debug_page\n" "toggle_invert")
