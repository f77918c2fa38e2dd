"""Firmware: the board database, manifests, mpy-cross, Docker builds and releases.

Imports nothing from the other subpackages of microsctl.
"""
