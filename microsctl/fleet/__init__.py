"""Many nodes at once: find them (scan), see them (status), name them (cache),
back them up, and drive them from applications (api). Imports firmware,
flashing and node; bench imports it."""
