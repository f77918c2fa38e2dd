# Virtual board: the devices wired to the pins, as tests set and read them
# (through LM_sim over the shell, or directly): HC-SR04, DHT22, NeoPixel
# strips, an SSD1306 OLED on I2C, the ESP32's temperature and touch pads.
import chip

DISTANCE = {}  # echo gpio -> mm to the obstacle (HC-SR04); missing: nothing in range
TOUCH = {}  # touch gpio -> reading
TEMP_F = [128]  # esp32.raw_temperature(): Fahrenheit, as the ESP32 reports it
DHT = {}  # gpio -> (temperature C, humidity %)
PIXELS = {}  # gpio -> list of (r, g, b) as last written to the strip
I2C_DEVICES = {}  # address -> device model


def pulse(gpio, level, timeout_us):
    # the HC-SR04 answers a trigger with an echo pulse of 2 * distance / 0.3432 mm/us
    mm = DISTANCE.get(gpio)
    if mm is None or level != 1:
        return -1
    us = (mm * 582 + 50) // 100
    return us if us < timeout_us else -2


class SSD1306:
    """Decodes the I2C stream of an SSD1306 (datasheet section 8.1.5: a control
    byte, Co and D/C#, before commands or data; section 9: commands) into its
    128x64 GDDRAM, horizontal addressing mode."""

    _ARGS = {0x20: 1, 0x21: 2, 0x22: 2, 0x81: 1, 0x8D: 1, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1}

    def __init__(self):
        self.ram = bytearray(1024)
        self.on = False
        self.inverted = False
        self.contrast = 0x7F
        self.col = [0, 0, 127]  # pointer, start, end
        self.page = [0, 0, 7]
        self.pending = []  # a command waiting for its argument bytes
        self.frames = 0

    def write(self, b):
        i = 0
        while i < len(b):
            ctrl = b[i]
            i += 1
            if ctrl & 0x40:  # D/C# = 1: data
                if ctrl & 0x80:  # Co = 1: one data byte, then a control byte
                    self._data(b[i : i + 1])
                    i += 1
                else:  # Co = 0: only data follows
                    self._data(b[i:])
                    return
            elif ctrl & 0x80:  # one command byte, then a control byte
                self._cmd(b[i])
                i += 1
            else:  # only command bytes follow
                for c in b[i:]:
                    self._cmd(c)
                return

    def _cmd(self, c):
        if self.pending:
            self.pending.append(c)
            op = self.pending[0]
            if len(self.pending) - 1 < self._ARGS[op]:
                return
            a = self.pending[1:]
            self.pending = []
            if op == 0x21:
                self.col = [a[0], a[0], a[1]]
            elif op == 0x22:
                self.page = [a[0], a[0], a[1]]
            elif op == 0x81:
                self.contrast = a[0]
            return
        if c in self._ARGS:
            self.pending = [c]
        elif c in (0xAE, 0xAF):
            self.on = c == 0xAF
        elif c in (0xA6, 0xA7):
            self.inverted = c == 0xA7

    def _data(self, d):
        for v in d:
            self.ram[self.page[0] * 128 + self.col[0]] = v
            if self.col[0] < self.col[2]:
                self.col[0] += 1
            else:
                self.col[0] = self.col[1]
                self.page[0] = self.page[0] + 1 if self.page[0] < self.page[2] else self.page[1]
                if self.page[0] == self.page[1]:
                    self.frames += 1

    def pixel(self, x, y):
        """What the panel shows at x, y: 1 lit (inversion and power applied)."""
        if not self.on:
            return 0
        v = (self.ram[(y >> 3) * 128 + x] >> (y & 7)) & 1
        return v ^ 1 if self.inverted else v

    def png(self, path):
        """The panel as a 128x64 greyscale PNG (lit pixels white), written row by
        row: one zlib stream of a single stored deflate block (RFC 1950/1951; the
        unix port's deflate module only decompresses), so the node's small heap
        never holds the whole image."""
        import binascii
        import struct

        n = 64 * 129  # rows of a filter byte and 128 pixels
        row = bytearray(129)
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
            ihdr = b"IHDR" + struct.pack(">IIBBBBB", 128, 64, 8, 0, 0, 0, 0)
            f.write(struct.pack(">I", 13) + ihdr + struct.pack(">I", binascii.crc32(ihdr)))
            head = b"IDAT\x78\x01" + struct.pack("<BHH", 1, n, n ^ 0xFFFF)
            f.write(struct.pack(">I", len(head) - 4 + n + 4) + head)
            crc = binascii.crc32(head)
            s1, s2 = 1, 0  # adler-32
            for y in range(64):
                for x in range(128):
                    row[x + 1] = 255 if self.pixel(x, y) else 0
                for v in row:
                    s1 = (s1 + v) % 65521
                    s2 = (s2 + s1) % 65521
                crc = binascii.crc32(row, crc)
                f.write(row)
            tail = struct.pack(">I", (s2 << 16) | s1)
            f.write(tail + struct.pack(">I", binascii.crc32(tail, crc)))
            f.write(struct.pack(">I", 0) + b"IEND" + struct.pack(">I", binascii.crc32(b"IEND")))
        return path


I2C_DEVICES[0x3C] = SSD1306()


# --- the devices' side of `machine` (machine.py forwards these names here) ---


class I2C:
    # the bus with its devices: address -> model (devices.py: an SSD1306 at 0x3C)
    def __init__(self, id=0, scl=None, sda=None, freq=400000):
        self.freq = freq

    def scan(self):
        return sorted(I2C_DEVICES)

    def _dev(self, addr):
        d = I2C_DEVICES.get(addr)
        if d is None:
            raise OSError(19)  # MP_ENODEV: no ACK (extmod/machine_i2c.c)
        return d

    def writeto(self, addr, buf, stop=True):
        self._dev(addr).write(bytes(buf))
        return len(buf)

    def writevto(self, addr, bufs, stop=True):
        # one transaction: the device sees the buffers as one stream
        self._dev(addr).write(b"".join(bytes(b) for b in bufs))


SoftI2C = I2C


# ADC per chip (an impersonated chip; the plain sim takes any pin). ESP32 family:
# ports/esp32/machine_adc.c madc_obj[] (the GPIOs of ADC1, ADC2), adc.h (widths:
# 9..12 bits on the ESP32, 12 elsewhere; atten ADC_ATTEN_DB_0..DB_11 = 0..3).
_ADC = {"esp32": ((32, 33, 34, 35, 36, 37, 38, 39), (0, 2, 4, 12, 13, 14, 15, 25, 26, 27), 9),
        "esp32c3": ((0, 1, 2, 3, 4), (5,), 12),
        "esp32s3": (tuple(range(1, 11)), tuple(range(11, 21)), 12)}


class ADC:
    VALUE = 512
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 12
    VALUES = {}  # gpio (or the ESP8266's ADC 0) -> read_u16 value a test set

    def __init__(self, pin, atten=3):
        if chip.NAME == "esp8266":
            # esp8266/machine_adc.c: ADC(0) (the TOUT pin) or ADC(1) (VDD); mp_obj_get_int()
            # of a Pin raises TypeError
            if not isinstance(pin, int):
                raise TypeError("can't convert Pin to int")
            if pin not in (0, 1):
                raise ValueError("ADC(%d) doesn't exist" % pin)
        self.id = pin if isinstance(pin, int) else pin.id
        self.bits = 12
        t = _ADC.get(chip.NAME)
        if t:
            if self.id not in t[0] + t[1]:  # madc_search_helper() finds nothing
                raise ValueError("invalid pin")
            self.atten(atten)

    def atten(self, a):
        if chip.NAME == "esp8266":  # MICROPY_PY_MACHINE_ADC_ATTEN_WIDTH is off there
            raise AttributeError("'ADC' object has no attribute 'atten'")
        if not 0 <= a <= 3:
            raise ValueError("invalid attenuation")  # machine_adc.c mp_machine_adc_atten_set_helper

    def width(self, bits):
        if chip.NAME == "esp8266":
            raise AttributeError("'ADC' object has no attribute 'width'")
        t = _ADC.get(chip.NAME)
        if t and not t[2] <= bits <= 12:
            raise ValueError("invalid bit-width")  # machine_adc.c, adc.h ADC_WIDTH_MIN/MAX
        self.bits = bits

    def _raw(self):
        u16 = ADC.VALUES.get(self.id, ADC.VALUE * 64)
        t = _ADC.get(chip.NAME)
        if t and self.id in t[1] and chip.NAME == "esp32":
            # esp32: the WiFi driver holds ADC2 (IDF adc_share_hw_ctrl.c adc2_wifi_acquire);
            # adc_oneshot_read() then fails and adc.c madcblock_read_helper() ignores it: 0
            import network

            for w in network._ifs.values():
                if w._active:
                    return 0
        return u16 >> (16 - self.bits)

    def read(self):
        if chip.NAME == "esp8266":  # 10 bits, 0..1024 (system_adc_read)
            return ADC.VALUES.get(self.id, ADC.VALUE * 64) * 1024 // 65535
        if chip.NAME:
            return self._raw()
        return self.read_u16() >> 6

    def read_u16(self):
        if chip.NAME == "esp8266":
            return self.read() * 65535 // 1024  # esp8266/machine_adc.c
        if chip.NAME:  # esp32/machine_adc.c: raw << (16 - bits) | raw >> (2 * bits - 16)
            r = self._raw()
            return r << (16 - self.bits) | r >> (2 * self.bits - 16)
        return ADC.VALUES.get(self.id, ADC.VALUE * 64)


def time_pulse_us(pin, level, timeout_us=1000000):
    # extmod/machine_pulse.c: the length of the next pulse at `level`, -1 when it
    # did not begin and -2 when it did not end within timeout_us
    return pulse(pin.id, level, timeout_us)


class TouchPad:
    # esp32/machine_touchpad.c: GPIO 0, 2, 4, 12-15, 27, 32, 33 on the ESP32
    def __init__(self, pin):
        if chip.NAME and chip.NAME != "esp32":
            raise ValueError("TouchPad: ESP32 only in this model")
        if pin.id not in (0, 2, 4, 12, 13, 14, 15, 27, 32, 33):
            raise ValueError("invalid pin for touchpad")
        self.id = pin.id

    def read(self):
        return TOUCH.get(self.id, 600)
