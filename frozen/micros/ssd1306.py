# A small SSD1306 (128x64, I2C) driver over machine.I2C and framebuf, written
# from the controller's datasheet (command table, section 9): a frame is sent
# whole in horizontal addressing mode, one I2C write with the data prefix.
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


class SSD1306(framebuf.FrameBuffer):
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

    def contrast(self, v):
        self.cmds(bytes((0x81, v)))
