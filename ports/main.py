# Filesystem main.py: hands over to the frozen micrOS core. Kept outside the
# firmware so a broken core or profile can still be recovered.
try:
    from micros.core import start
except ImportError as e:
    print("micrOS core missing:", e)
    try:
        import webrepl

        webrepl.start()
    except ImportError:
        raise SystemExit(1)
else:
    start()
