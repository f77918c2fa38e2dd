# Load Module (original micrOS): a 128x64 SSD1306 OLED on the I2C pins
# (i2c_sda, i2c_scl), drawn through micros.ssd1306 (framebuf). Its 1 KB frame
# buffer is made on first use only.
_oled = []
_inv = [0]


def _d():
    if not _oled:
        from machine import Pin, SoftI2C
        from micros import pins, ssd1306

        i2c = SoftI2C(scl=Pin(pins.pin("i2c_scl")), sda=Pin(pins.pin("i2c_sda")), freq=400000)
        _oled.append(ssd1306.SSD1306(i2c))
    return _oled[0]


def text(intext="<text>", posx=0, posy=0, show=True):
    """Write intext at pixel posx, posy (8x8 font)."""
    d = _d()
    d.text(str(intext), int(posx), int(posy))
    if show:
        d.show()
    return "OLED text: %s" % intext


def invert():
    """Swap light and dark on the panel."""
    _inv[0] ^= 1
    _d().invert(_inv[0])
    return "OLED invert: %d" % _inv[0]


def clean(state=0, show=True):
    """Fill the screen with state (0 dark, 1 lit)."""
    d = _d()
    d.fill(int(state))
    if show:
        d.show()
    return "OLED clean"


def draw_line(sx, sy, ex, ey, state=1):
    """Line from sx, sy to ex, ey."""
    d = _d()
    d.line(int(sx), int(sy), int(ex), int(ey), int(state))
    d.show()
    return "OLED line"


def draw_rect(sx, sy, ex, ey, state=1):
    """Rectangle outline at sx, sy of width ex and height ey."""
    d = _d()
    d.rect(int(sx), int(sy), int(ex), int(ey), int(state))
    d.show()
    return "OLED rect"


def show():
    """Send the frame buffer to the panel."""
    _d().show()
    return "OLED show"


def poweron():
    """Panel on."""
    _d().poweron()
    return "OLED ON"


def poweroff():
    """Panel off (the frame is kept)."""
    _d().poweroff()
    return "OLED OFF"


def help():
    """This module's functions, as they are called."""
    return ("text intext='<text>' posx=0 posy=0 show=True", "invert", "clean state=0 show=True",
            "draw_line sx sy ex ey state=1", "draw_rect sx sy ex ey state=1", "show", "poweron", "poweroff")
