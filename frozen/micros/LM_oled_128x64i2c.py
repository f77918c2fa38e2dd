# Load Module (original micrOS): a 128x64 SSD1306 OLED on the I2C pins
# (i2c_sda, i2c_scl), with its own small driver written from the controller's
# datasheet (command table, section 9): framebuf draws, and a frame is sent whole
# in horizontal addressing mode, one I2C write after the data prefix. Its 1 KB
# frame buffer is made on first use only.
import framebuf
from micropython import const

_ADDR = const(0x3C)
_W = const(128)
_H = const(64)
# power-up: off, horizontal addressing, start line 0, column 127 at SEG0, 64 MUX,
# COM scan remapped, offset 0, alternative COM pins, clock, precharge, VCOMH,
# contrast, follow RAM, not inverted, charge pump on, display on
_INIT = b"\xae\x20\x00\x40\xa1\xa8\x3f\xc8\xd3\x00\xda\x12\xd5\x80\xd9\xf1\xdb\x30\x81\xff\xa4\xa6\x8d\x14\xaf"
_WINDOW = b"\x21\x00\x7f\x22\x00\x07"  # columns 0..127, pages 0..7


class _SSD1306(framebuf.FrameBuffer):
    def __init__(self, i2c, addr=_ADDR):
        self.i2c = i2c
        self.addr = addr
        self.buf = bytearray(_W * _H // 8)
        self._cmd = bytearray(2)  # control byte 0x80 (one command byte follows), command
        self._cmd[0] = 0x80
        super().__init__(self.buf, _W, _H, framebuf.MONO_VLSB)
        self.cmds(_INIT)

    def cmds(self, seq):
        for c in seq:
            self._cmd[1] = c
            self.i2c.writeto(self.addr, self._cmd)

    def show(self):
        self.cmds(_WINDOW)
        self.i2c.writevto(self.addr, (b"\x40", self.buf))  # 0x40: display data follows

    def poweroff(self):
        self.cmds(b"\xae")

    def poweron(self):
        self.cmds(b"\xaf")

    def invert(self, on):
        self.cmds(b"\xa7" if on else b"\xa6")

_oled = []
_inv = [0]


def _d():
    if not _oled:
        from machine import Pin, SoftI2C
        from micros import pins

        i2c = SoftI2C(scl=Pin(pins.pin("i2c_scl")), sda=Pin(pins.pin("i2c_sda")), freq=400000)
        _oled.append(_SSD1306(i2c))
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
    return ("text intext='<text>' posx=0 posy=0 show=True\n" "invert\n" "clean state=0 show=True\n"
            "draw_line sx sy ex ey state=1\n" "draw_rect sx sy ex ey state=1\n" "show\n" "poweron\n"
            "poweroff")
