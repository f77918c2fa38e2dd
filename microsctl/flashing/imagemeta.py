"""What a virtual board's flash image was flashed with, in a small JSON file beside it.

`invoke flash --board sim` and `invoke provision --board sim` record the profile;
`invoke sim --flash IMG` names it, since a kept image boots with its own settings
whatever --profile says. The record holds names only, never a setting's value.
"""
import json
from datetime import datetime, timezone
from pathlib import Path

from microsctl.flashing import fsimage


def meta_path(image):
    image = Path(image)
    return image.with_name(image.name + ".meta.json")


def record(image, profile, how):
    """Note that `how` (e.g. "invoke flash") wrote `profile` into `image`."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    data = {"profile": profile, "written_by": how, "at": when}
    fsimage.write_atomic(meta_path(image), json.dumps(data, indent=1).encode())


def recorded(image):
    """The record for `image` as a dict, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(meta_path(image).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("profile"), str) else None


def describe(image):
    """"flashed with profile lamp (invoke flash, 2026-11-25 17:50 UTC)" or why it is not known."""
    data = recorded(image)
    if data is None:
        return "profile not known (no record beside it: not written by invoke flash or provision)"
    return f"flashed with profile {data['profile']} ({data.get('written_by', '?')}, {data.get('at', '?')})"
