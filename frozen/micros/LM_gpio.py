# Load Module: RGB LED and servo over PWM, on logical pins. machine's PWM and the pin
# map are imported when an output is first driven, not at import: `help` loads every
# Load Module in turn, and this one was the largest of them to hold.
from micropython import const

_PWM = const(0)
_HZ = const(1)
_pwm = {}  # name -> [PWM, frequency]
_rgb = [0, 0, 0]  # the levels last set, for state()


def _out(name, freq):
    p = _pwm.get(name)
    if p is None:
        from machine import PWM, Pin
        from micros import pins

        if pins.board("PWM_ONE_FREQ", 0):
            # ESP8266: one frequency for every PWM pin (esp8266/esppwm.c); a second
            # frequency would silently retune the outputs already running
            for k in _pwm:
                if _pwm[k][_HZ] != freq:
                    raise ValueError("this board has one PWM frequency for all pins: %s runs at %d Hz, "
                                     "this needs %d Hz; turn it off first (RGB_deinit/Servo_deinit)"
                                     % (k, _pwm[k][_HZ], freq))
        p = [PWM(Pin(pins.pin(name)), freq=freq, duty_u16=0), freq]
        _pwm[name] = p
    return p[_PWM]


def _off(*names):
    for name in names:
        p = _pwm.pop(name, None)
        if p:
            p[_PWM].deinit()


def _level(v):
    v = int(v)
    if not 0 <= v <= 1000:
        raise ValueError("a colour level is 0..1000, not %d" % v)
    return v * 65535 // 1000


def RGB(r=0, g=0, b=0):
    """Set the RGB LED on pwm_1/pwm_2/pwm_3, each level 0..1000."""
    duties = (_level(r), _level(g), _level(b))
    for name, d in zip(("pwm_1", "pwm_2", "pwm_3"), duties):
        _out(name, 1000).duty_u16(d)
    _rgb[:] = [int(r), int(g), int(b)]
    return "SET RGB"


def RGB_deinit():
    """Stop the RGB LED's PWM."""
    _off("pwm_1", "pwm_2", "pwm_3")
    _rgb[:] = [0, 0, 0]
    return "RGB OFF"


def state():
    """What telemetry reports (micros.mqtt): the RGB levels, 0..1000 each."""
    return {"rgb": _rgb}


def Servo(angle=90):
    """Turn the servo on pwm_0 to angle 0..180 degrees (50 Hz, 0.5-2.5 ms)."""
    a = int(angle)
    if not 0 <= a <= 180:
        raise ValueError("a servo angle is 0..180, not %d" % a)
    us = 500 + a * 2000 // 180
    _out("pwm_0", 50).duty_u16(us * 65535 // 20000)
    return "SET SERVO %d" % a


def Servo_deinit():
    """Stop the servo's pulses."""
    _off("pwm_0")
    return "SERVO OFF"


def help():
    """This module's functions, as they are called."""
    return ("RGB r=0 g=0 b=0\n" "RGB_deinit\n" "state\n" "Servo angle=90\n" "Servo_deinit")
