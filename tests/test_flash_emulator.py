"""The emulated ROM loader itself: the properties the flashing tests rely on."""
import pytest
from esptool.targets import CHIP_DEFS
from esptool.util import FatalError

from microsctl.emulator.esprom import EspRom, Flash


def test_nor_semantics_erase_then_and():
    f = Flash(64 * 1024)
    f.program(10, b"\x0f\xf0")
    f.program(10, b"\xf0\xff")  # no erase: bits can only be cleared
    assert f.data[10:12] == b"\x00\xf0"
    f.erase(100, 1)  # erases the whole 4 KiB sector
    assert f.data[0:4096] == b"\xff" * 4096
    f.stuck[5] = 0x01
    f.program(0, b"\xff" * 8)
    assert f.data[5] == 0xFE


@pytest.mark.parametrize("chip", ["esp32", "esp8266"])
def test_rom_checks_block_seq_and_status_bytes(chip):
    with EspRom(chip, 2 * 1024 * 1024) as rom:
        esp = CHIP_DEFS[chip](rom.url, 115200)
        try:
            esp.connect("no-reset")
            _, status = esp.command(esp.ESP_CMDS["READ_REG"], (0x40001000).to_bytes(4, "little"))
            assert len(status) == (2 if chip == "esp8266" else 4)  # as the real ROMs answer
            block = b"\x5a" * esp.FLASH_WRITE_SIZE
            esp.flash_begin(2 * len(block), 0x10000)
            esp.flash_block(block, 0)
            with pytest.raises(FatalError):
                esp.flash_block(block, 5)  # out of sequence: refused, not written
            assert bytes(rom.flash.data[0x10000 : 0x10000 + len(block)]) == block
            assert rom.flash.data[0x10000 + len(block)] == 0xFF
        finally:
            esp._port.close()
    assert "SYNC" in rom.log and not rom.stub


def test_each_emulator_has_its_own_flash():
    with EspRom("esp32", 1024 * 1024) as a, EspRom("esp8266", 4 * 1024 * 1024) as b:
        a.flash.program(0, b"\x00")
        assert b.flash.data[0] == 0xFF and len(a.flash.data) != len(b.flash.data)
