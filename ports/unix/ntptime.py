# Virtual board: NTP sets the wall clock back to the host's UTC time.
import time

host = "pool.ntp.org"


def settime():
    time.set_time(time.time() - time.OFFSET)
