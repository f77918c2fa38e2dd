# Load Module of the virtual board only: what tests read and drive.
import gc
import machine
import time


def pins():
    return {"pins": machine.PINS, "pwm": machine.PWMS, "flips": machine.FLIPS}


def heap():
    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "base": machine.HEAP_BASE}


def clock():
    return time.time()


def set_clock(epoch):
    time.set_time(int(epoch))
    return time.time()


def step_clock(seconds):
    time.set_time(time.time() + int(seconds))
    return time.time()


def edge(pin, level):
    from micros import pins as lp

    machine.edge(lp.pin(pin), 1 if level else 0)
    return "edge %s %d" % (pin, level)
