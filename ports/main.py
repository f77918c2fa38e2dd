# Filesystem main.py: hands over to the frozen micrOS core. Kept outside the
# firmware so a broken core or profile can still be recovered.
try:
    from micros.core import start
except ImportError as e:
    print("micrOS core missing:", e)
    start = None
if start:
    start()
else:
    # Rescue over WebREPL with the config's appwd: webrepl.start() with no password
    # and no webrepl_cfg.py raises TypeError, one over 9 characters ValueError
    # (extmod/modwebrepl.c). No SystemExit: on ESP32 it soft-resets into this
    # same path again (ports/esp32/main.c).
    pw = None
    try:
        import json

        with open("node_config.json") as f:
            pw = json.load(f).get("appwd")
    except (OSError, ValueError, AttributeError):
        pass
    try:
        import webrepl

        webrepl.start(password=pw if isinstance(pw, str) and 4 <= len(pw) <= 9 else None)
    except (ImportError, TypeError, ValueError, OSError) as e:
        print("no WebREPL rescue (appwd must be 4..9 characters):", repr(e))
