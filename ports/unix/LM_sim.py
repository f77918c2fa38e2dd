# Load Module of the virtual board only: what tests read and drive.
import gc
import machine
import os
import time


def pins():
    return {"pins": machine.PINS, "pwm": machine.PWMS, "flips": machine.FLIPS}


def heap():
    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "base": machine.HEAP_BASE}


# the clock as the host counts it (from 1970), whatever the chip's epoch
def clock():
    return time.time() + time.EPOCH


# What drives the board (its clock, its pins) exists only when the node was started
# for it (SimNode(drive=True), as the tests start it): a shell client of a plain
# virtual node can read the board, not change it.
if os.getenv("MICROS_SIM_DRIVE") == "1":

    def set_clock(epoch):
        time.set_time(int(epoch) - time.EPOCH)
        return clock()

    def step_clock(seconds):
        time.set_time(time.time() + int(seconds))
        return clock()

    def edge(pin, level):
        from micros import pins as lp

        machine.edge(lp.pin(pin), 1 if level else 0)
        return "edge %s %d" % (pin, level)

    HELD = []

    def hold(n, port=0):
        """n more TCP connections from the node to 127.0.0.1:port, held open (as an LM's
        or MQTT's own); 0: close them all. They count against the chip's lwIP (lwip.py)."""
        import socket

        if not int(n):
            while HELD:
                HELD.pop().close()
        for _ in range(int(n)):
            s = socket.socket()
            HELD.append(s)
            s.connect(socket.getaddrinfo("127.0.0.1", int(port))[0][-1])
        return "held %d" % len(HELD)


def modules():
    # what is loaded now: tests check that a feature that is off costs no module
    import sys

    return sorted(sys.modules)


def wifi(nets=None):
    """The networks in reach from now on, as MICROS_SIM_WIFI spells them
    ("ssid:password[,...]", "" for none); no argument: what is in reach."""
    import network

    if nets is not None:
        network.AIR = str(nets)
    return network.AIR if network.AIR is not None else __import__("os").getenv("MICROS_SIM_WIFI") or ""


# --- devices wired to the virtual board (ports/unix/devices.py) ---


def distance(pin, mm):
    """HC-SR04 on echo `pin`: the obstacle at mm; mm < 0: nothing in range."""
    import devices
    from micros import pins as lp

    g = lp.pin(pin)
    if int(mm) < 0:
        devices.DISTANCE.pop(g, None)
    else:
        devices.DISTANCE[g] = int(mm)
    return "distance %s %d" % (pin, mm)


def adc(pin, u16):
    from micros import pins as lp

    machine.ADC.VALUES[lp.pin(pin)] = int(u16)
    return "adc %s %d" % (pin, u16)


def dht(pin, temp, hum):
    import devices
    from micros import pins as lp

    devices.DHT[lp.pin(pin)] = (temp, hum)
    return "dht %s %s %s" % (pin, temp, hum)


def pixels(pin):
    import devices
    from micros import pins as lp

    return devices.PIXELS.get(lp.pin(pin), [])


def touch(gpio, value):
    import devices

    devices.TOUCH[int(gpio)] = int(value)
    return "touch %d %d" % (gpio, value)


def temp_f(value):
    import devices

    devices.TEMP_F[0] = int(value)
    return "temp %d F" % value


def oled_png(path):
    """The SSD1306's panel as a PNG file (path on the host)."""
    import devices

    return devices.I2C_DEVICES[0x3C].png(path)


def oled_state():
    import devices

    d = devices.I2C_DEVICES[0x3C]
    return {"on": d.on, "inverted": d.inverted, "frames": d.frames}
def qstrs():
    """Print the qstr pool figures (micropython.qstr_info) to the node's output: tests read
    n_qstr there to see that nothing from the network was interned."""
    import micropython

    micropython.qstr_info()
    return "qstr_info printed"
