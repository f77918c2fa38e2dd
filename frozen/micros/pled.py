# Progress LED heartbeat (config `pled`): a short blink a second on the
# `builtin` pin while the event loop runs; a stuck loop shows as a still LED.
# Apart from sched, so the default profile (pled on) loads only this.
import asyncio
import sys
from machine import Pin
from micropython import const

_PERIOD_MS = const(1000)
_ON_MS = const(50)

GPIO = -1  # the pin that blinks, for `sched status`


def start():
    global GPIO
    had = "micros.pins" in sys.modules
    from micros import pins

    try:
        GPIO = pins.pin("builtin")
        led = Pin(GPIO, Pin.OUT)
        on = pins.board("LED_ON", 1)  # NodeMCU's LED is active low
    except ValueError as e:
        print("pled: %s: no heartbeat" % e)
        return
    finally:
        if not had:  # its tables cost RAM on a .mpy node; it is needed once here
            from micros import core

            core.drop("pins")
    asyncio.create_task(_beat(led, on))


async def _beat(led, on):
    while True:
        led.value(on)
        await asyncio.sleep_ms(_ON_MS)
        led.value(not on)
        await asyncio.sleep_ms(_PERIOD_MS - _ON_MS)
