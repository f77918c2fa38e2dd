"""What a firmware write puts where on an ESP32 whose partition table has OTA slots.

MicroPython's firmware.bin (ports/esp32/makeimg.py) is the bootloader, the partition table at
0x8000 and the app at the table's first app partition, joined with 0xFF in between. For a
table with `otadata` (ESP32_GENERIC's OTA variant, partitions-4MiB-ota.csv) it is written the
way ESP-IDF's `idf.py flash` writes a project on first flash (its flasher_args.json): the
bootloader, the partition table, the initial otadata and the app, each at its own offset.
The initial otadata is erased flash, 0xFF over the whole partition
(components/app_update/CMakeLists.txt, gen_empty_partition.py), so the bootloader finds no OTA
selection and starts ota_0, where the new app is (bootloader_utility.c,
bootloader_utility_get_selected_boot_partition): a node that had switched to ota_1 by a
firmware OTA boots the firmware just flashed. Every other board gets firmware.bin whole.

`check_node_table`: settings alone (`invoke provision`) go where the board's table puts the
filesystem; on a node whose own table is another variant's that would be inside an app slot
(0x200000 lies in ota_1 of partitions-4MiB-ota.csv), so it is refused before anything is written.
"""
from microsctl import MicrosError
from microsctl.flashing import checks

PARTITION_TABLE_MAX = 0xC00  # gen_esp32part.py MAX_PARTITION_LENGTH: partition-table.bin's size


def firmware_parts(board, fw, name="firmware.bin"):
    """[(offset, file name, bytes)] a firmware write puts on the board's flash."""
    pt = board.partitions
    if pt is None or not pt.has_ota:
        return [(board.firmware.offset, name, fw)]
    base = board.firmware.offset
    table_at = checks.PARTITION_TABLE_OFFSET
    app = pt.boot_app
    boot = fw[: checks.image_length(board.chip, fw)]
    table = fw[table_at - base : table_at - base + PARTITION_TABLE_MAX]
    app_image = fw[app.offset - base :]
    app_image = app_image[: checks.image_length(board.chip, app_image)]
    if base + len(boot) > table_at or len(app_image) > app.size:
        raise MicrosError(f"{name} does not fit {pt.table}: pass the firmware built for {board.full_name}")
    return [(base, "bootloader.bin", boot), (table_at, "partition-table.bin", table),
            (pt.otadata.offset, "ota_data_initial.bin", b"\xff" * pt.otadata.size),
            (app.offset, "micropython.bin", app_image)]


def check_node_table(board, table):
    """MicrosError when the partition table read from the node (0xC00 bytes at 0x8000) puts its
    filesystem elsewhere than `board` does; an erased or unreadable table is not judged here."""
    if board.partitions is None or board.filesystem is None:
        return
    try:
        rows = checks.partitions(table)
    except MicrosError:
        return
    at = checks.fs_offset_of(rows)
    if at == board.filesystem.offset:
        return
    v = checks.variant_of(board, rows)
    if v is None:
        do = "flash it with 'invoke flash' to give it this board's layout"
    else:
        do = f"pass --variant {v.lower()}" if v else "leave out --variant"
    raise MicrosError(f"the node's partition table keeps its filesystem at {at:#x}, --board {board.full_name} "
                      f"at {board.filesystem.offset:#x}: {do}; nothing was written")
