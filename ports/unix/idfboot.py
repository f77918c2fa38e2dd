# Virtual board: the ESP-IDF second-stage bootloader's choice of app on a flash image
# with an OTA partition table (components/bootloader_support/src/bootloader_utility.c,
# bootloader_utility_get_selected_boot_partition and bootloader_utility_load_boot_image,
# with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y as MicroPython v1.28.0's
# ports/esp32/boards/sdkconfig.base sets it):
#  1. every otadata record still PENDING_VERIFY is set ABORTED: the app booted last
#     time never called mark_app_valid_cancel_rollback(), so it is rolled back;
#  2. both records invalid (unused, ABORTED or INVALID): factory, else ota_0 (with
#     unused records, the slot that loads is then written as seq VALID in record 0);
#  3. else the valid record with the highest seq picks slot (seq - 1) % slots, and a
#     NEW record becomes PENDING_VERIFY (this boot is the new app's trial);
#  4. a slot whose image does not check out is skipped: the slots below it, then above.
# The app is the core as a ROMFS image, mounted at /rom as flashboot.py does.
import esp32part as P

FACTORY = -1


def _index(p):
    return FACTORY if p[1] == 0 else P._ota_slots().index(p)


def _part(i):
    return P.find_first(0, 0) if i == FACTORY else P._ota_slots()[i]


def select(img):
    """The app partition the bootloader loads from flash image img (P.RUNNING is set)."""
    P.load(img)
    slots = P._ota_slots()
    ota = P.read_otadata()
    start, initial = FACTORY, False
    if ota is not None:
        for i in (0, 1):
            if ota[i][1] == P.PENDING_VERIFY:
                ota[i][1] = P.ABORTED
                P.write_otadata(i, ota[i][0], P.ABORTED)
        if (P.invalid(ota[0]) and P.invalid(ota[1])) or not slots:
            if P.find_first(0, 0) is None:
                start = 0
                initial = all(r[0] == 0xFFFFFFFF or r[2] != P.rec_crc(r[0]) for r in ota)
        else:
            a = P.active(ota)
            if a >= 0:
                start = _index(P.slot_of(ota[a][0]))
                if ota[a][1] == P.NEW:
                    P.write_otadata(a, ota[a][0], P.PENDING_VERIFY)
    n = len(slots)
    for i in list(range(start, FACTORY - 1, -1)) + list(range(start + 1, n)):
        p = _part(i) if i < n else None
        if p is not None and P.image_ok(p):
            if i > FACTORY and initial:  # set_actual_ota_seq
                P.write_otadata(0, i + 1, P.VALID)
            P.RUNNING = p
            print("[boot] app %s at %#x" % (p[4], p[2]))
            return p
    raise SystemExit("[boot] no bootable app partition in " + img)
