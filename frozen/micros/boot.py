# The boot sequence, run once and then dropped from RAM by core.start():
# config, emergency exception buffer, CPU speed, boot hook, network.
import machine
import os
import micropython
from micros import call, conf, core


def _freq():
    # boostmd: the chip's top speed (ESP32 240 MHz, C3 160 MHz, ESP8266 160 MHz), else 80 MHz
    for mhz in (240, 160) if conf.get("boostmd") else (80,):
        try:
            machine.freq(mhz * 1000000)
            return
        except ValueError:  # not a speed this chip runs at
            pass


def _core(m):
    # Where the running core came from, read off the package's import path:
    # frozen (".frozen/micros"), romfs ("/rom/micros"), else a filesystem
    # folder: .mpy or .py by __file__ (ESP8266 builds have no __file__;
    # there a filesystem core is the .mpy one `invoke flash --prebuilt` writes).
    p = m.__path__
    if p.startswith(".frozen"):
        return "frozen"
    if p.startswith("/rom"):
        return "romfs"
    return "py" if getattr(m, "__file__", "").endswith(".py") else "mpy"


def run():
    import micros

    print("micrOS %s, core: %s (%s)" % (micros.VERSION, _core(micros), micros.__path__))
    for note in conf.load():
        print(note)
    try:
        os.stat(".ota")  # an update was cut short (micros.ota): finish or discard it
    except OSError:
        pass
    else:
        from micros import ota

        print(ota.recover())
        core.drop("ota")
    # the emergency buffer (irqmembuf bytes of heap for good) only when an IRQ
    # handler is armed, as the original: extirq's pin handler is the one that runs
    # in IRQ context (timirq and cron run as asyncio tasks)
    if conf.get("extirq") and conf.get("irqmembuf"):
        try:
            micropython.alloc_emergency_exception_buf(conf.get("irqmembuf"))
        except AttributeError:  # ports without hard IRQs (the unix port)
            pass
    _freq()
    if not core.SAFE:  # safe mode: no boot hook
        call.run_all(conf.get("boothook"), "boothook")  # before the network, as the original
    from micros import net

    try:
        core.NET = net.up()[0]
    finally:
        core.drop("net")
