# Load Module (original micrOS): the analogue input adc_0, and a threshold
# filter with hysteresis for actions (cron or IRQ callbacks).
_adc = []
_last = [0]  # action_fltr's last decision


def _read():
    if not _adc:
        from machine import ADC, Pin
        from micros import pins

        g = pins.pin("adc_0")
        try:
            try:
                a = ADC(Pin(g))
            except TypeError:  # ESP8266: ADC(0), its one input, takes a number (esp8266/machine_adc.c)
                a = ADC(g)
        except ValueError:  # not an ADC input of this chip (esp32/machine_adc.c madc_obj[])
            raise ValueError("adc_0 is GPIO %d, which has no ADC on this chip: set pinmap" % g)
        try:
            a.atten(ADC.ATTN_11DB)  # ESP32: the full 0..3.3 V range
        except AttributeError:
            pass
        _adc.append(a)
    return _adc[0].read_u16() >> 6  # 0..1023, as the original's read()


def measure():
    """One reading: raw 0..1023 and percent."""
    v = _read()
    return {"raw": v, "percent": v * 100 // 1023}


def action_fltr(limit=512, threshold=20):
    """1 above limit+threshold, 0 below limit-threshold, else the last answer."""
    v = _read()
    if v > limit + threshold:
        _last[0] = 1
    elif v < limit - threshold:
        _last[0] = 0
    return _last[0]


def help():
    """This module's functions, as they are called."""
    return ("measure\n" "action_fltr limit=512 threshold=20")
