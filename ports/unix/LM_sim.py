# Load Module of the virtual board only: what tests read and drive.
import gc
import machine
import time


def pins():
    return {"pins": machine.PINS, "pwm": machine.PWMS, "flips": machine.FLIPS}


def heap():
    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "base": machine.HEAP_BASE}


# the clock as the host counts it (from 1970), whatever the chip's epoch
def clock():
    return time.time() + time.EPOCH


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
