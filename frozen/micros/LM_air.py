# Load Module (original micrOS): air quality, a DHT22 (temperature, humidity)
# on simple_1 and an MQ135 gas sensor on adc_0 (CO2-equivalent ppm, corrected
# for temperature and humidity with the sensor's datasheet curve fit).
import time

_dht = []
_adc = []
_rd = [None, None, None]  # ticks_ms of the last DHT reading for state(), temp, hum

_RLOAD = 10.0  # kOhm on the board
_RZERO = 76.63  # sensor resistance in clean air (calibration)
_PARA = 116.6020682
_PARB = 2.769034857


def dht_measure():
    """DHT22: temperature (C) and humidity (%)."""
    if not _dht:
        import dht
        from machine import Pin
        from micros import pins

        _dht.append(dht.DHT22(Pin(pins.pin("simple_1"))))
    d = _dht[0]
    d.measure()
    return {"temp": d.temperature(), "hum": d.humidity()}


def _correction(t, h):
    # MQ135 datasheet dependency on temperature and humidity, fitted
    if t < 20:
        return 0.00035 * t * t - 0.02718 * t + 1.39538 - (h - 33.0) * 0.0018
    return -0.003333333 * t - 0.001923077 * h + 1.130128205


def getMQ135GasPPM(temperature, humidity):
    """MQ135 gas ppm, corrected for temperature (C) and humidity (%)."""
    if not _adc:
        import sys
        from machine import ADC, Pin
        from micros import pins

        g = pins.pin("adc_0")
        _adc.append(ADC(g) if sys.platform == "esp8266" else ADC(Pin(g)))
    v = max(_adc[0].read_u16() >> 6, 1)
    res = (1023.0 / v - 1.0) * _RLOAD / _correction(temperature, humidity)
    return round(_PARA * (res / _RZERO) ** -_PARB, 1)


def measure():
    """DHT22 and MQ135 together: temp, hum, ppm."""
    out = dht_measure()
    out["ppm"] = getMQ135GasPPM(out["temp"], out["hum"])
    return out


def state():
    """The DHT22 as a dict (for MQTT): temp (C), hum (%); None when it does not answer.
    Read at most every 2 s (the DHT22's sampling period), else the last reading."""
    now = time.ticks_ms()
    if _rd[0] is None or time.ticks_diff(now, _rd[0]) >= 2000:
        _rd[0] = now
        try:
            d = dht_measure()
            _rd[1] = d["temp"]
            _rd[2] = d["hum"]
        except OSError:
            _rd[1] = _rd[2] = None
    return {"temp": _rd[1], "hum": _rd[2]}


def help():
    """This module's functions, as they are called."""
    return ("dht_measure\n" "getMQ135GasPPM temperature humidity\n" "measure\n" "state")
