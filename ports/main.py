# Filesystem main.py: hands over to the frozen micrOS core. Kept outside the
# firmware so a broken core or profile can still be recovered.
try:
    from micros.core import start
except (ImportError, MemoryError) as e:  # MemoryError: the core does not fit in the heap
    print("micrOS core missing:", repr(e))
    import os

    if ".fwota" in os.listdir():  # the trial boot of a firmware update (micros.fwota) has no core:
        os.remove(".fwota")  # not marked valid, so a reset boots the old firmware (ESP-IDF rollback)
        import machine

        machine.reset()
    # Rescue over WebREPL with the config's appwd: with no password (and no
    # webrepl_cfg.py) webrepl.start() raises TypeError, over 9 characters
    # ValueError (extmod/modwebrepl.c). No SystemExit: on ESP32 it soft-resets
    # into this same path again (ports/esp32/main.c). Kept short: main.py's
    # bytecode stays in RAM while the core runs.
    try:
        import json
        import webrepl

        webrepl.start(password=json.load(open("node_config.json"))["appwd"])
    except (ImportError, OSError, KeyError, TypeError, ValueError) as e:  # ValueError: appwd not 4..9
        print("no WebREPL rescue:", repr(e))
else:
    start()
