# Virtual board: the `dht` module (MicroPython's drivers/dht/dht.py API) for a
# DHT22 on a pin. The reading a test set (devices.DHT) goes through the sensor's
# 5-byte frame (humidity x10, temperature x10 with the sign bit, checksum) and
# is decoded as the driver decodes it.
import devices


class DHTBase:
    def __init__(self, pin):
        self.pin = pin
        self.buf = bytearray(5)

    def measure(self):
        r = devices.DHT.get(self.pin.id)
        if r is None:
            raise OSError(110)  # ETIMEDOUT: the sensor did not answer
        t, h = round(r[0] * 10), round(r[1] * 10)
        self.buf[0], self.buf[1] = h >> 8, h & 0xFF
        a = abs(t)
        self.buf[2], self.buf[3] = (a >> 8) | (0x80 if t < 0 else 0), a & 0xFF
        self.buf[4] = sum(self.buf[:4]) & 0xFF


class DHT11(DHTBase):
    def humidity(self):
        return self.buf[0]

    def temperature(self):
        return self.buf[2]


class DHT22(DHTBase):
    def humidity(self):
        return (self.buf[0] << 8 | self.buf[1]) * 0.1

    def temperature(self):
        t = ((self.buf[2] & 0x7F) << 8 | self.buf[3]) * 0.1
        return -t if self.buf[2] & 0x80 else t
