# Virtual board: NTP sets the wall clock to the host's UTC time (counted from
# the chip's epoch, as micropython-lib's ntptime does with NTP_DELTA).
import time

host = "pool.ntp.org"


def settime():
    if time.HELD is not None:  # a test holds the clock: NTP leaves it where it is
        return
    time.set_time(time.time_ns() // 1000000000 - time.EPOCH)
