"""Flashing: config profiles and their schema, filesystem images, prebuilt downloads, esptool.

Uses microsctl.firmware (boards, build outputs); nothing here imports microsctl.node.
"""
