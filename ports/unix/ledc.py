# Virtual board: the ESP32 family's PWM (LEDC) as MicroPython v1.28.0 drives it
# (ports/esp32/machine_pwm.c over ESP-IDF v5.5.1), loaded by machmore.PWM on an
# impersonated ESP32, C3 or S3 (chip.LEDC). Modelled: speed modes x 4 timers, one
# frequency per timer, channels per mode, which timer/channel a PWM takes and the
# errors when none is left, the duty resolution the source clock allows at a
# frequency, duty_u16 rounded to it. Not modelled: light sleep, invert, duty_ns,
# clocks other than APB/REF_TICK (machine.freq below 80 MHz lowers APB), the
# exact ledc_get_freq() of odd frequencies, the IDF's error below the lowest
# frequency its divider reaches (C3/S3: about 5 Hz).
import chip
from machine import PWMS

_U16 = 16  # machine_pwm.c UI_RES_16_BIT
# chip.LEDC: (speed modes, channels per mode, SOC_LEDC_TIMER_BIT_WIDTH, REF_TICK below
# 10 Hz): ESP-IDF v5.5.1 components/soc/<chip>/include/soc/soc_caps.h (esp32: HS mode,
# 8 channels, 20 bits, REF_TICK; esp32c3: 6 channels, 14 bits; esp32s3: 8, 14);
# SOC_LEDC_TIMER_NUM 4 on all three
MODES, CHANS, WIDTH, REF = chip.LEDC
TIMERS = 4
_tim = {}  # (mode, timer) -> [freq, duty resolution]
_chan = {}  # (mode, channel) -> [pin, timer]; pin -1: reserved for a timer change


def _ilog2(n):
    r = 0
    while n > 1:
        n >>= 1
        r += 1
    return r


def resolution(freq):
    """machine_pwm.c find_suitable_duty_resolution() over ledc.c ledc_find_suitable_duty_resolution()."""
    src = 1000000 if REF and freq < 10 else 80000000  # EMPIRIC_FREQ: REF_TICK, else APB_CLK
    for div in ((src + freq // 2) // freq, src // freq):  # rounded, then truncated
        res = min(_ilog2(div), WIDTH)
        p = 1 << res
        d = ((src << 8) + freq * p // 2) // (freq * p)  # ledc_calculate_divisor()
        if 255 < d <= 0x3FFFF:  # not LEDC_IS_DIV_INVALID
            break
    else:
        raise OSError("frequency %d Hz: no LEDC divider (ESP_FAIL on the chip)" % freq)
    res = min(res, _U16)
    if res >= WIDTH:  # the hardware cannot reach 100 % at the top resolution
        res -= 1
    return src, res


def _in_use(mode, ch, timer):  # is_timer_in_use()
    for (m, c), v in _chan.items():
        if m == mode and c != ch and v[1] == timer and v[0] >= 0:
            return True
    return False


def _free_chan(mode, pin):  # is_free_channels()
    for c in range(CHANS):
        v = _chan.get((mode, c))
        if v is None or v[0] < 0 or v[0] == pin:
            return True
    return False


def _free_timer(mode, freq):  # is_free_timers()
    for t in range(TIMERS):
        v = _tim.get((mode, t))
        if v is None or v[0] == freq:
            return True
    return False


def _find_timer(pin, freq):  # find_timer(); freq -1: a free timer
    for m in range(MODES):
        if _free_chan(m, pin):
            for t in range(TIMERS):
                v = _tim.get((m, t))
                if (v[0] if v else -1) == freq:
                    return m, t
    return -1, -1


class PWM:
    def __init__(self, pin, freq=-1, duty_u16=-1):
        if pin.id not in chip.PWM:  # an input-only pin (esp32/machine_pin.c)
            raise ValueError("PWM not supported on pin %d" % pin.id)
        self.pin = pin.id
        self.mode = self.ch = self.timer = -1
        self.duty = 1 << 15  # PWM_DUTY: 50 %
        self.init(freq, duty_u16)

    def init(self, freq=-1, duty_u16=-1):  # mp_machine_pwm_init_helper()
        if freq != -1:
            self._range(freq, 40000000)
        if duty_u16 >= 0:
            self._duty(duty_u16)
        mode = ch = -1
        for m in range(MODES):  # find_channel(): this pin's channel first
            for c in range(CHANS):
                v = _chan.get((m, c))
                if v and v[0] == self.pin and ch < 0:
                    mode, ch = m, c
        for m in range(MODES):  # ... else a free one in a mode with a timer for freq
            for c in range(CHANS):
                v = _chan.get((m, c))
                if ch < 0 and (v is None or v[0] < 0) and _free_timer(m, freq):
                    mode, ch = m, c
        if ch < 0:
            raise RuntimeError("out of PWM channels:%d" % (MODES * CHANS))
        self.mode, self.ch = mode, ch
        if freq == -1:
            v = _chan.get((mode, ch))
            if v and v[1] >= 0:
                freq = _tim[(mode, v[1])][0]
            if freq <= 0:
                freq = 5000  # PWM_FREQ
        self._set(freq)

    def _range(self, freq, top):  # check_freq_ranges()
        if not 0 < freq <= top:
            raise ValueError("frequency must be from 1Hz to %dMHz" % (top // 1000000))

    def _duty(self, d):  # check_duty_u16(): 65535 means 100 %
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 must be from 0 to %d" % 65536)
        self.duty = 65536 if d == 65535 else d

    def _active(self):
        if self.timer < 0:
            raise RuntimeError("PWM is inactive")

    def _set(self, freq):  # set_freq_duty(): select_timer(), set_freq(), apply_duty()
        mode, timer = _find_timer(self.pin, freq)
        if timer < 0:
            if self.mode >= 0 and self.ch >= 0 and not _in_use(self.mode, self.ch, self.timer):
                mode, timer = self.mode, self.timer
            if timer < 0:
                mode, timer = _find_timer(self.pin, -1)
        if timer < 0:
            raise RuntimeError("out of PWM timers:%d" % (MODES * TIMERS))
        if self.timer != timer:
            _chan.pop((self.mode, self.ch), None)
            self.mode, self.timer = mode, timer
            _chan[(mode, self.ch)] = [-1, timer]
        t = _tim.get((mode, timer))
        if not t or t[0] != freq:
            src, res = resolution(freq)
            self._range(freq, src // 2)
            _tim[(mode, timer)] = [freq, res]
        self._apply()

    def _apply(self):  # apply_duty(): the channel keeps duty >> (16 - resolution)
        res = _tim[(self.mode, self.timer)][1]
        self.raw = self.duty >> (_U16 - res)
        _chan[(self.mode, self.ch)] = [self.pin, self.timer]
        PWMS[self.pin] = (self.freq(), self.duty_u16())

    def freq(self, f=None):
        self._active()
        if f is None:
            return _tim[(self.mode, self.timer)][0]
        self._range(f, 40000000)
        if f != _tim[(self.mode, self.timer)][0]:
            self._set(f)

    def duty_u16(self, d=None):
        if d is None:  # get_duty_u16()
            self._active()
            d = self.raw << (_U16 - _tim[(self.mode, self.timer)][1])
            return 65535 if d == 65536 else d
        self._duty(d)
        self._active()
        self._apply()

    def deinit(self):  # pwm_deinit(): the timer is freed when no other channel uses it
        if self.timer >= 0:
            if not _in_use(self.mode, self.ch, self.timer):
                _tim.pop((self.mode, self.timer), None)
            _chan.pop((self.mode, self.ch), None)
        PWMS.pop(self.pin, None)
        self.mode = self.ch = self.timer = -1
