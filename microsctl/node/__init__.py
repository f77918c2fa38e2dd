"""A node over its socket shell: the client and the virtual board (MicroPython unix port)."""
