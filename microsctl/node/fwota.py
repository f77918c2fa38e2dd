"""Firmware updates over the node's shell on the ESP32 family (`invoke ota --firmware`).

The node side is frozen/micros/fwota.py, reached through the shell's `ota fw` lines (an
authenticated client only). The app image is streamed into the node's next update slot
(esp32.Partition(RUNNING).get_next_update()), read back and sha256-checked on the node before
the boot slot is switched, then the node restarts. Its first boot on the new slot is a trial:
it marks itself valid (mark_app_valid_cancel_rollback) only after its boot finished and its
shell serves, else it resets and ESP-IDF's bootloader rolls back to the old slot. The tool
waits for the node and reports which slot and version came back.

What goes into the slot: on an ESP32 board the app image of firmware.bin (the partition the
table names first, as ports/esp32/makeimg.py places it), checked by flashing/checks.py; on the
virtual board the core's ROMFS image (microsctl/node/simota.py).
"""
import base64
import hashlib
import sys
import time
from pathlib import Path

from microsctl import MicrosError
from microsctl.node.client import Shell, is_error
from microsctl.node.ota import byte_progress


def info(sh):
    """{platform, running, boot, version} as the node tells them (`ota fw info`)."""
    reply = sh.cmd("ota fw info")
    if is_error(reply):
        msg = reply.splitlines()[-1][len("Error: "):]
        if "no firmware OTA" in msg:
            raise MicrosError(f"{msg}: firmware OTA works on the ESP32 family only; use 'invoke update' "
                              "(keeps the settings) or 'invoke flash' over USB")
        raise MicrosError(f"the node refused the firmware update: {msg}")
    parts = reply.split()
    if len(parts) != 5 or parts[0] != "fw":
        raise MicrosError(f"the node does not know firmware updates ({reply!r}): update it over USB first "
                          "(invoke update)")
    return dict(zip(("platform", "running", "boot", "version"), parts[1:]))


def refuse_unless_ota(node):
    """MicrosError for a node that cannot take a firmware update over the air: its MicroPython
    has no esp32.Partition (the ESP8266 port has none; the node says "none")."""
    if node["platform"] == "esp8266" or node["running"] == "none":
        raise MicrosError(f"MicroPython has no firmware OTA on this node ({node['platform']}, no esp32.Partition; "
                          "the ESP8266 has none): update it over USB with 'invoke update' (keeps the settings) "
                          "or 'invoke flash'")


def app_image(board, data, name="the firmware"):
    """The bytes that go into an app slot, checked: the sim's ROMFS core, else the app image of an
    ESP32 firmware.bin (bootloader + table + app) or an app image given alone (micropython.bin)."""
    from microsctl.flashing import checks

    if board.is_virtual:
        from microsctl.node import simota

        checks.check_firmware(board, data, name)
        return simota.check_core(data, name)
    if board.chip == "esp8266":
        raise MicrosError("MicroPython has no firmware OTA on the ESP8266: update it over USB with 'invoke update' "
                          "(keeps the settings) or 'invoke flash'")
    at = checks.PARTITION_TABLE_OFFSET - board.firmware.offset
    if len(data) > at + 32 and data[at : at + 2] == b"\xaa\x50":  # firmware.bin: take its app
        checks.check_firmware(board, data, name)
        rows = checks.partitions(data[at : at + 0xC00])
        _, _, _, off, _ = next(r for r in rows if r[1] == 0)
        app = data[off - board.firmware.offset :]
    else:
        app = data
    img = checks._one_image(board, app, name, "(the app)")
    return app[: checks._image_length(img)]


def send(sh, image, progress=None):
    """Stream `image` into the node's next update slot and switch to it; returns (slot, wire bytes)."""
    digest = hashlib.sha256(image).hexdigest()
    line = f"ota fw begin {len(image)} {digest}"
    reply = _ok(sh, line, "the firmware update")
    if not reply.startswith("fw ready "):
        raise MicrosError(f"the node answered {reply!r} to the firmware update")
    _, _, chunk, slot = reply.split()
    chunk = int(chunk)
    wire = len(line) + 1
    for i in range(0, len(image), chunk):
        line = "ota fw data " + base64.b64encode(image[i : i + chunk]).decode()
        _ok(sh, line, f"the write of {slot}")
        wire += len(line) + 1
        if progress:
            progress(min(i + chunk, len(image)), len(image))
    reply = _ok(sh, "ota fw end", "the switch")
    wire += len("ota fw end") + 1
    if not reply.startswith(f"fw switched {slot}"):
        raise MicrosError(f"the node answered {reply!r} to the switch")
    return slot, wire


def _ok(sh, line, what):
    reply = sh.cmd(line)
    if sh.closed:
        raise MicrosError(f"the node closed the connection during {what}: it still boots its old firmware; run again")
    if is_error(reply):
        raise MicrosError(f"the node refused {what}: {reply.splitlines()[-1][len('Error: '):]}; "
                          "it still boots its old firmware")
    return reply


def push(image, port, host="127.0.0.1", timeout=60, progress=None):
    """Send the image, let the node restart, tell which firmware came back. Returns a report dict:
    result "updated" (the new slot runs, marked valid) or "rolled back" (the old slot runs)."""
    from microsctl.node.ota import wait_back

    t0 = time.monotonic()
    with Shell(port, host) as sh:
        before = info(sh)
        refuse_unless_ota(before)
        try:
            slot, wire = send(sh, image, progress)
        except MicrosError:
            if not sh.closed:
                try:
                    sh.cmd("ota fw abort")
                except MicrosError:
                    pass
            raise
    sent = time.monotonic() - t0
    # micros.core settles the trial boot (micros.fwota.settle) before its shell answers anyone:
    # the first answer comes from the firmware that stays (a failed trial resets first)
    end = time.monotonic() + timeout
    while True:
        try:
            with wait_back(port, host, max(1, end - time.monotonic())) as sh:
                after = info(sh)
            break
        except MicrosError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)
    result = "updated" if after["running"] == slot else "rolled back"
    return {"before": before, "after": after, "slot": slot, "result": result, "bytes": len(image), "wire": wire,
            "seconds": sent, "total_seconds": time.monotonic() - t0}


def pick_image(port, host="127.0.0.1", firmware=None, board=None, prebuilt=None, index=None, variant=None):
    """(app image, its file) for `invoke ota --firmware`: the image named, the release's or the one
    invoke build made, checked for the board. Without a board the node at host:port is asked:
    a virtual node takes the sim's image, a board needs --board."""
    from microsctl.firmware import boards
    from microsctl.flashing import flash

    if board is None:
        with Shell(port, host) as sh:
            node = info(sh)
        refuse_unless_ota(node)
        if node["platform"] != "linux":
            raise MicrosError(f"the node is an {node['platform']}: name its board for the firmware check, "
                              "e.g. --board ESP32_GENERIC --variant OTA")
        board = "sim"
    b = boards.get(board, variant) if isinstance(board, str) else board
    if prebuilt is not None:
        if firmware not in (None, True):
            raise MicrosError("--firmware PATH and --prebuilt exclude each other: pick one")
        from microsctl.flashing import fetch

        firmware, _ = fetch.fetch(b, None if prebuilt is True else prebuilt, index=index)
    elif firmware in (None, True):
        firmware = flash.default_firmware(b)
        if firmware is None:
            raise MicrosError(f"no firmware for {b.full_name}: run 'invoke build --board {b.name}', "
                              "or pass --firmware PATH or --prebuilt")
    try:
        data = Path(firmware).read_bytes()
    except OSError as err:
        raise MicrosError(f"cannot read firmware {firmware}: {err.strerror}") from err
    image = app_image(b, data, str(firmware))
    return image, firmware


def firmware_ota(port, host="127.0.0.1", firmware=None, board=None, prebuilt=None, index=None, timeout=60,
                 variant=None):
    """`invoke ota --firmware` on one node: pick and check the image, push it, report. Without a
    board the node is asked: a virtual node takes the sim's image, a board needs --board."""
    image, firmware = pick_image(port, host, firmware, board, prebuilt, index, variant)
    print(f"[ota] firmware {firmware}: {len(image)} B for an app slot of {host}:{port}", file=sys.stderr, flush=True)
    res = push(image, port, host, timeout, byte_progress("[ota] {done}/{total} bytes written", 10))
    a = res["after"]
    if res["result"] == "rolled back":
        raise MicrosError(f"the new firmware did not pass its first boot: the node rolled back to {a['running']} "
                          f"(micrOS {a['version']}); check the firmware on a test node")
    print(f"[ota] the node restarted on {a['running']} (micrOS {a['version']}, was {res['before']['running']} "
          f"{res['before']['version']}), marked valid", file=sys.stderr)
    return res
