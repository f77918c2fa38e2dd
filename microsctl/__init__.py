"""Host tools for micrOS: virtual board, shell client, builds, flashing."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FROZEN = ROOT / "frozen"  # holds the `micros` package, frozen into firmware
PORTS = ROOT / "ports"
BOARDS = ROOT / "boards"
PROFILES = ROOT / "config_profiles"
BUILD = ROOT / "build"


class MicrosError(Exception):
    """A user-facing failure: one line that says what went wrong and what to do."""
