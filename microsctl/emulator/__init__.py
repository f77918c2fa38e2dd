"""An emulated ESP ROM loader and flasher stub that the real esptool talks to."""
