# Load Module (original micrOS): two hobby servos at 50 Hz, on pwm_0 and pwm_2;
# duty as the original gave it: 40..115 of a 10-bit period (0.8..2.2 ms).
import time

_MIN = 40
_MAX = 115
_pwm = {}  # logical pin -> PWM


def _set(name, duty):
    d = int(duty)
    if not _MIN <= d <= _MAX:
        raise ValueError("a servo duty is %d..%d, not %d" % (_MIN, _MAX, d))
    p = _pwm.get(name)
    if p is None:
        from machine import PWM, Pin
        from micros import pins

        p = _pwm[name] = PWM(Pin(pins.pin(name)), freq=50, duty_u16=0)
    p.duty_u16(d * 64)  # 10-bit duty -> 16-bit
    return d


def _off(name):
    p = _pwm.pop(name, None)
    if p:
        p.deinit()


def Servo(duty=100):
    """Turn servo 1 (pwm_0) to duty 40..115."""
    return "SET SERVO: duty %d" % _set("pwm_0", duty)


def Servo_demo():
    """Sweep servo 1 from one end to the other and back to the middle."""
    for d in range(_MIN, _MAX + 1, 5):
        _set("pwm_0", d)
        time.sleep_ms(20)
    for d in range(_MAX, _MIN - 1, -5):
        _set("pwm_0", d)
        time.sleep_ms(20)
    return Servo(77)


def Servo_deinit():
    """Stop servo 1's pulses."""
    _off("pwm_0")
    return "DEINIT SERVO"


def Servo2(duty=100):
    """Turn servo 2 (pwm_2) to duty 40..115."""
    return "SET SERVO2: duty %d" % _set("pwm_2", duty)


def Servo2_deinit():
    """Stop servo 2's pulses."""
    _off("pwm_2")
    return "DEINIT SERVO2"


def help():
    """This module's functions, as they are called."""
    return ("Servo duty=100\n" "Servo_demo\n" "Servo_deinit\n" "Servo2 duty=100\n" "Servo2_deinit")
