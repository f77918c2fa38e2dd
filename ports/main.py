# Filesystem main.py: hands over to the frozen micrOS core. Kept outside the
# firmware so a broken core or profile can still be recovered (rescue.py, beside
# it). Kept short: its bytecode stays in RAM while the core runs.
try:
    from micros.core import start
except (ImportError, MemoryError) as e:  # MemoryError: the core does not fit in the heap
    print("micrOS core missing:", repr(e))
    import rescue
else:
    start()
