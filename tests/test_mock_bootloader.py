"""Cross-check of our emulator with a third-party ROM-loader double, PyPI esp32-mock-bootloader.

Its flash is one fixed 4 MB chip (JEDEC ID 0x164020) per server, so the cross-check is the 4 MB
case: an ESP32 and an ESP8266 whose firmware header says 1MB (esptool elf2image's default).
Its stub read-back stops early ("Serial data stream stopped"), so what was written is read back
through the ROM (--no-stub, about 100 kbit/s): the image headers, the partition table and the
filesystem blocks in use; the rest of each region is proven erased by comparing the chip's MD5
of the whole region with the MD5 of what we rebuilt. The rebuilt flash is then booted with the
boot model (microsctl/emulator/boot.py: ports/esp8266/modules/flashbdev.py, ports/esp32/main.c,
the ports' _boot.py/inisetup.py, VfsLfs2 in the real MicroPython unix port).
"""
import contextlib
import hashlib
import io

import esp32_mock_bootloader as mock  # pinned in pyproject's dev extra
import pytest

from microsctl.emulator.boot import boot
from microsctl.firmware import boards
from microsctl.flashing import flash
from microsctl.flashing import geometry
from microsctl.emulator import images
from tests.flashkit import set_secrets

MB = 1024 * 1024


def _read_back(chip, url, regions, md5_regions):
    """{offset: bytes} read through the ROM loader (ESP32 family only: the ESP8266 ROM reads
    nothing, and the mock's stub read stops early), and {(offset, size): md5 hex} from the chip
    (ESP8266: through the stub, whose MD5 reply the mock gets right)."""
    from esptool.cmds import attach_flash, connect_esp, run_stub

    got, sums = {}, {}
    with connect_esp(port=url, chip=chip, before="no-reset") as esp:
        attach_flash(esp)
        with contextlib.redirect_stdout(io.StringIO()):
            if chip == "esp8266":
                esp = run_stub(esp)
            else:
                for off, size in regions:
                    got[off] = bytes(esp.read_flash_slow(off, size, None))  # as esptool --no-stub read-flash
            for off, size in md5_regions:
                sums[(off, size)] = esp.flash_md5sum(off, size)
    return got, sums


@pytest.mark.parametrize("name", ["ESP32_GENERIC", "ESP8266_GENERIC"])
def test_flash_through_esp32_mock_bootloader_boots_with_the_settings(name, monkeypatch, tmp_path):
    set_secrets(monkeypatch, tmp_path)
    b = boards.get(name)
    fw = images.firmware(b.chip, 620 * 1024 if b.chip == "esp8266" else 1500 * 1024)  # ESP8266 header: 1MB
    (tmp_path / "firmware.bin").write_bytes(fw)
    sized = geometry.sized(b, "4MB")  # the mock's JEDEC ID says 4 MB: detection must find that
    fs = sized.filesystem
    img, _cfg = flash.node_image(sized, "lamp", ["devfid=mock01"])  # what flash() writes, built here too
    # what the chip should hold: the firmware (ESP8266: header byte 3 = 4MB, 40 MHz) and the image
    want = bytearray(b"\xff" * 4 * MB)
    want[b.firmware.offset : b.firmware.offset + len(fw)] = fw
    if b.chip == "esp8266":
        want[3] = 0x40 | (fw[3] & 0x0F)
    want[fs.offset : fs.end] = img
    used = [n for n in range(fs.block_count) if img[n * fs.block_size : (n + 1) * fs.block_size].strip(b"\xff")]
    fw_region = (b.firmware.offset, len(fw))
    with mock.mock_bootloader(b.chip) as m:
        url = m.url()
        out = flash.flash(b, url, "lamp", firmware=tmp_path / "firmware.bin", sets=["devfid=mock01"])
        reads = [(0x8000, 0xC00)] + [(fs.offset + n * fs.block_size, fs.block_size) for n in used]
        got, sums = _read_back(b.chip, url, reads, [fw_region, (fs.offset, fs.size)])
    assert len(got) == (0 if b.chip == "esp8266" else len(reads))
    dump = bytearray(want)
    for off, data in got.items():  # what was read back replaces what we expected
        dump[off : off + len(data)] = data
    # the chip's MD5 of each whole region equals ours: the dump is what the chip holds
    for (off, size), digest in sums.items():
        assert digest == hashlib.md5(dump[off : off + size]).hexdigest(), hex(off)
    res = boot(b.chip, dump)
    assert res.outcome == "mounted", res.said
    assert res.config()["devfid"] == "mock01"
    if b.chip == "esp8266":  # the MD5 above proved the header at 0x0 now says 4MB; esptool was told so
        assert out["argv"][out["argv"].index("--flash-size") + 1] == "4MB"
