"""The virtual board impersonates a chip (ports/unix/chip.py, MICROS_SIM_CHIP): each rule
is run in the real MicroPython unix port against what MicroPython v1.28.0 does on that
chip. RULES is the table: rule, upstream file it models, and per chip what must happen.
One test per rule per chip."""
import os
import subprocess
import time

import pytest

from microsctl import PORTS
from microsctl.run import micropython

CHIPS = ("esp8266", "esp32", "esp32c3", "esp32s3")
UPSTREAM = os.environ.get("MICROS_MPY_MIRROR", "/work/.mirror/micropython+micropython/repo")


def mp(chip, code, env=None, cwd=None):
    """Run code in the unix port with the shims of ports/unix impersonating chip; its stdout."""
    e = dict(os.environ, MICROS_SIM_CHIP=chip, **(env or {}))
    e.pop("MICROS_SIM_CLOCK", None)
    pre = "import sys\nsys.path[:0] = [%r]\n" % str(PORTS / "unix")
    p = subprocess.run([micropython(), "-c", pre + code], capture_output=True, text=True, env=e, cwd=cwd,
                       timeout=30)
    assert p.returncode == 0, p.stderr or p.stdout
    return p.stdout.strip()


def raises(expr):
    # MicroPython code printing the exception type and text of expr, or "ok"
    return "try:\n    %s\n    print('ok')\nexcept Exception as e:\n    print(type(e).__name__, e)\n" % expr


# rule -> (upstream file(s), {chip: (code, expected stdout)})
def _gpio(chip):
    bad = {"esp8266": (6, 7, 8, 11, 17), "esp32": (24, 28, 31, 40), "esp32c3": (14, 17, 18, 19, 22),
           "esp32s3": (22, 25, 26, 32, 49)}[chip]
    good = {"esp8266": (0, 9, 10, 16), "esp32": (0, 23, 25, 39), "esp32c3": (0, 13, 20, 21),
            "esp32s3": (18, 19, 20, 21, 33, 48)}[chip]
    code = "import machine\nfor g in %r:\n%s" % (bad, "    " + raises("machine.Pin(g)").rstrip().replace("\n", "\n    ") + "\n")
    code += "for g in %r:\n    machine.Pin(g)\nprint('good ok')\n" % (good,)
    return code, "\n".join(["ValueError invalid pin"] * len(bad) + ["good ok"])


def _p16(chip):
    # ESP8266 GPIO16 (no IRQ, no pull, no PWM); on the others a pin every target has
    return 16 if chip == "esp8266" else 4


# lwIP scenarios (ports/unix/lwip.py), in the node's process; T_PORT: a free port
LWIP_SOCKETS = """\
import machine  # as simboot: chip.py (and with it lwip.py as `socket`) before the node
import os, socket
a = socket.getaddrinfo("127.0.0.1", int(os.getenv("T_PORT")))[0][-1]
L = socket.socket()
L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L.bind(a)
L.listen(8)
f = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
c = socket.socket()
c.connect(a)
try:
    L.accept()
    print("accepted")
except OSError as e:
    print("accept OSError", e.args[0], c.recv(10))
try:
    socket.socket()
    print("socket ok")
except OSError as e:
    print("socket OSError", e.args[0])
"""
LWIP_PCBS = """\
import machine  # as simboot: chip.py (and with it lwip.py as `socket`) before the node
import os, socket
a = socket.getaddrinfo("127.0.0.1", int(os.getenv("T_PORT")))[0][-1]
L = socket.socket()
L.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
L.bind(a)
L.listen(8)
cs = []
for i in range(5):
    cs.append(socket.socket())
    cs[-1].connect(a)
try:
    L.accept()
    print("accepted")
except OSError as e:
    print("accept OSError", e.args[0])
cs[0].setblocking(False)
try:
    print(cs[0].recv(10))
except OSError as e:
    print("peer OSError", e.args[0])
cs.append(socket.socket())
cs[-1].connect(a)
L.accept()
print("accepted at 6")
"""

# LEDC scenarios (ports/unix/ledc.py): timers taken by frequencies, then duty per frequency
LEDC_TIMERS = """\
import machine
fill = {"esp32": (4, 5, 12, 13, 14, 15, 17)}.get(machine.chip.NAME, (4, 5, 12))
a = machine.PWM(machine.Pin(0), freq=1000)
b = machine.PWM(machine.Pin(2), freq=1000)  # shares a's timer
ps = [machine.PWM(machine.Pin(g), freq=100 + i) for i, g in enumerate(fill)]
for what in ("a.freq(2500)", "machine.PWM(machine.Pin(13 if 13 not in fill else 18), freq=3000)", "a.freq(100)"):
    try:
        exec(what)
        print("ok", a.freq(), b.freq())
    except Exception as e:
        print(type(e).__name__, e)
"""
LEDC_DUTY = """\
import machine
p = machine.PWM(machine.Pin(4), freq=50, duty_u16=30001)
out = [p.duty_u16()]
for f in (1000, 5000, 40000):
    p.freq(f)
    p.duty_u16(30001)
    out.append(p.duty_u16())
p.duty_u16(65535)
out.append(p.duty_u16())
print(*out)
for expr in ("p.freq(0)", "p.freq(40000001)", "p.duty_u16(65536)"):
    try:
        exec(expr)
        print("ok", p.freq())
    except Exception as e:
        print(type(e).__name__, e)
"""
LEDC_WANT = {
    "esp8266": ("ok 1000 1000\nok 1000 1000\nok 100 100",
                "29951 29951 29951 29951 65471\nok 1\nok 1000\nValueError duty out of range"),
    "esp32": ("RuntimeError out of PWM timers:8\nRuntimeError out of PWM channels:16\nok 100 1000",
              "30001 30001 30000 29952 65535"),
    "esp32c3": ("RuntimeError out of PWM timers:4\nRuntimeError out of PWM channels:6\nok 100 1000",
                "30000 30000 30000 29952 65535"),
    "esp32s3": ("RuntimeError out of PWM timers:4\nRuntimeError out of PWM channels:8\nok 100 1000",
                "30000 30000 30000 29952 65535"),
}
_LEDC_RANGE = ("\nValueError frequency must be from 1Hz to 40MHz\nValueError frequency must be from 1Hz to 40MHz"
               "\nValueError duty_u16 must be from 0 to 65536")

RULES = {
    "gpio-table": ("esp8266/machine_pin.c pyb_pin_obj[]; esp32/machine_pin.h per target", _gpio),
    "input-only": ("esp32/machine_pin.c GPIO_FIRST_NON_OUTPUT", lambda c: (
        "import machine\n" + raises("machine.Pin(%d, machine.Pin.OUT)" % (34 if c in ("esp32", "esp32s3") else 5)),
        "ValueError pin can only be input" if c == "esp32" else "ok")),
    "irq": ("esp8266/machine_pin.c pin_irq: phys_port >= 16 has no IRQ", lambda c: (
        "import machine\n" + raises("machine.Pin(%d).irq(handler=lambda p: 0)" % _p16(c)),
        "OSError pin does not have IRQ capabilities" if c == "esp8266" else "ok")),
    "pull": ("esp8266/machine_pin.c pyb_pin_obj_init_helper: Pin(16) has no pull", lambda c: (
        "import machine\n" + raises("machine.Pin(%d, machine.Pin.IN, machine.Pin.PULL_UP)" % _p16(c)),
        "ValueError Pin(16) doesn't support pull" if c == "esp8266" else "ok")),
    "pwm-pins": ("esp8266/machine_pwm.c, esppwm.c pin_num[]", lambda c: (
        "import machine\n" + raises("machine.PWM(machine.Pin(%d), freq=1000)" % _p16(c)),
        "ValueError PWM not supported on pin 16" if c == "esp8266" else "ok")),
    "pwm-one-frequency": ("esp8266/esppwm.c pwm_set_freq(): one frequency, 1..1000 Hz", lambda c: (
        "import machine\na = machine.PWM(machine.Pin(4), freq=1000)\nb = machine.PWM(machine.Pin(5), freq=50)\n"
        "print(a.freq(), b.freq())\nb.freq(5000)\nprint(a.freq(), b.freq())\n",
        "50 50\n1000 1000" if c == "esp8266" else "1000 50\n1000 5000")),
    "pwm-duty": ("esp8266/machine_pwm.c duty_u16 -> 1024 steps, esppwm.c PWM_DEPTH 1023", lambda c: (
        "import machine\np = machine.PWM(machine.Pin(4), freq=1000)\np.duty_u16(30000)\nprint(p.duty_u16())\n"
        "p.duty_u16(65535)\nprint(p.duty_u16())\n",
        "29951\n65471" if c == "esp8266" else "30000\n65535")),
    "cpu-freq": ("esp8266/modmachine.c, esp32/modmachine.c mp_machine_set_freq", lambda c: (
        "import machine\nprint(machine.freq())\n" + raises("machine.freq(240000000)") + raises("machine.freq(80000000)"),
        {"esp8266": "80000000\nValueError frequency must be 80MHz, 160MHz\nok",
         "esp32c3": "160000000\nValueError frequency must be 20MHz, 40MHz, 80MHz, 160MHz\nok"}.get(c, "160000000\nok\nok"))),
    "epoch-2000": ("py/mpconfig.h MICROPY_EPOCH_IS_2000; the RTC starts at 0 after power-on", lambda c: (
        "import time\nprint(time.time() < 60, time.gmtime(0)[:3], time.localtime()[0])\n",
        "True (2000, 1, 1) 2000")),
    "wlan-constants": ("esp8266/modnetwork_globals.h; esp32/modnetwork.h, modnetwork_globals.h", lambda c: (
        "import network as n\nprint(n.STAT_IDLE, n.STAT_CONNECTING, n.STAT_NO_AP_FOUND, n.STAT_WRONG_PASSWORD, n.STAT_GOT_IP)\n",
        "0 1 3 2 5" if c == "esp8266" else "1000 1001 201 202 1010")),
    "wlan-retries": ("esp32/network_wlan.c: STA_DISCONNECTED reconnects, status() keeps the reason", lambda c: (
        "import network, time\ns = network.WLAN(network.STA_IF)\ns.active(True)\ns.connect('home', 'pw')\n"
        "a = s.status()\ntime.sleep_ms(500)\nb = s.status(), s.isconnected()\ntime.sleep_ms(1000)\n"
        "print(a == network.STAT_CONNECTING, b[0] == network.STAT_NO_AP_FOUND, b[1], s.isconnected(),"
        " s.status() == network.STAT_GOT_IP)\n",
        "True True False True True")),
    "webrepl-password": ("extmod/modwebrepl.c webrepl_set_password; micropython-lib webrepl.py start()", lambda c: (
        "import webrepl\n" + raises("webrepl.start()") + raises("webrepl.start(password='0123456789')")
        + raises("webrepl.start(password='abcd')") + "webrepl.stop()\n",
        "WebREPL is not configured, run 'import webrepl_setup'\nTypeError can't convert NoneType to str\nValueError \n"
        "WebREPL server started on http://127.0.0.1:%d/\nStarted webrepl in manual override mode\nok")),
    # the node's listener and 8 UDP sockets, then one client: the 10th socket; its connection
    # accepted by lwIP finds no socket, so the peer is closed without a byte; socket() fails too
    "lwip-sockets": ("ESP-IDF v5.5.1 components/lwip/Kconfig LWIP_MAX_SOCKETS 10; esp-lwip sockets.c lwip_accept, "
                     "lwip_socket -> ENFILE; esp32/modsocket.c", lambda c: (LWIP_SOCKETS,
                     "accepted\nsocket ok" if c == "esp8266" else "accept OSError 23 b''\nsocket OSError 23")),
    # five outgoing connections: the 6th incoming SYN is dropped on the ESP8266 (here: reset, and
    # accept() finds nothing); with a 6th outgoing one the count is past 5 and `==` lets one in
    # 4 timers a speed mode (2 modes on the ESP32): a new frequency takes a free timer; a PWM whose
    # timer is shared finds none ("out of PWM timers"), a new pin finds no channel in a mode with a
    # timer left ("out of PWM channels"); a frequency already running shares its timer
    "ledc-timers": ("esp32/machine_pwm.c select_timer, find_channel; IDF soc_caps.h SOC_LEDC_TIMER_NUM, "
                    "SOC_LEDC_CHANNEL_NUM, SOC_LEDC_SUPPORT_HS_MODE", lambda c: (LEDC_TIMERS, LEDC_WANT[c][0])),
    # duty_u16 kept as duty >> (16 - resolution), the resolution the 80 MHz APB clock allows at the
    # frequency (ESP32 up to 16 bits; C3/S3 14-bit timers, one bit less at the top); 65535 is 100 %
    "ledc-duty": ("esp32/machine_pwm.c find_suitable_duty_resolution, apply_duty, get_duty_u16, check_freq_ranges; "
                  "IDF ledc.c ledc_find_suitable_duty_resolution", lambda c: (
                      LEDC_DUTY, LEDC_WANT[c][1] + ("" if c == "esp8266" else _LEDC_RANGE))),
    # the ADC inputs: ESP8266 ADC(0)/ADC(1) by number (a Pin: TypeError); the ESP32 family by Pin,
    # on the GPIOs of madc_obj[] (ADC1 and ADC2) only
    "adc-pins": ("esp8266/machine_adc.c make_new; esp32/machine_adc.c madc_obj[], madc_search_helper", lambda c: (
        "import machine\n" + "".join(raises(e) for e in (
            "machine.ADC(machine.Pin(%d))" % {"esp8266": 0, "esp32": 36, "esp32c3": 0, "esp32s3": 1}[c],
            "machine.ADC(machine.Pin(%d))" % {"esp8266": 5, "esp32": 21, "esp32c3": 6, "esp32s3": 21}[c],
            "machine.ADC(%d)" % (1 if c == "esp8266" else 2 if c != "esp32c3" else 5), "machine.ADC(3)")),
        {"esp8266": "TypeError can't convert Pin to int\nTypeError can't convert Pin to int\nok\n"
                    "ValueError ADC(3) doesn't exist",
         "esp32": "ok\nValueError invalid pin\nok\nValueError invalid pin",
         "esp32c3": "ok\nValueError invalid pin\nok\nok",
         "esp32s3": "ok\nValueError invalid pin\nok\nok"}[c])),
    # ESP32: WiFi holds ADC2; adc_oneshot_read() fails and MicroPython ignores it: read() is 0
    "adc2-wifi": ("esp32/adc.c madcblock_read_helper; IDF adc_oneshot.c adc_oneshot_read, "
                  "adc_share_hw_ctrl.c adc2_wifi_acquire (CONFIG_IDF_TARGET_ESP32)", lambda c: (
        "import machine, network\ng = %d\nmachine.ADC.VALUES[g] = 40000\na = machine.ADC(g)\nx = a.read_u16()\n"
        "network.WLAN(network.AP_IF).active(True)\nprint(x, a.read_u16(), a.read())\n"
        % {"esp8266": 0, "esp32": 4, "esp32c3": 5, "esp32s3": 11}[c],
        {"esp8266": "39999 39999 625", "esp32": "40009 0 0"}.get(c, "40009 40009 2500"))),
    # attenuation 0..3 (ADC_ATTEN_DB_0..DB_11); width 9..12 bits on the ESP32, 12 on C3/S3;
    # read_u16 = raw << (16 - bits) | raw >> (2 * bits - 16); no atten() on the ESP8266
    "adc-atten-width": ("esp32/machine_adc.c atten/width set helpers, read_u16; esp32/adc.h ADC_WIDTH_MIN/MAX",
                        lambda c: (
        "import machine\na = machine.ADC(%s)\nmachine.ADC.VALUES[a.id] = 40000\n" % (
            "0" if c == "esp8266" else "machine.Pin(%d)" % {"esp32": 36, "esp32c3": 0, "esp32s3": 1}[c])
        + "".join(raises(e) for e in ("a.atten(4)", "a.atten(3)", "a.width(9)", "a.width(13)"))
        + "print(a.read_u16(), a.read())\n",
        {"esp8266": "AttributeError 'ADC' object has no attribute 'atten'\n" * 2
                    + "AttributeError 'ADC' object has no attribute 'width'\n" * 2 + "39999 625",
         "esp32": "ValueError invalid attenuation\nok\nok\nValueError invalid bit-width\n40014 312"}.get(
            c, "ValueError invalid attenuation\nok\nValueError invalid bit-width\nValueError invalid bit-width\n"
               "40009 2500"))),
    "lwip-tcp-pcbs": ("esp-open-lwip lwip/core/tcp_in.c tcp_listen_input: active PCBs == MEMP_NUM_TCP_PCB (5)",
                      lambda c: (LWIP_PCBS, "accept OSError 11\npeer OSError 104\naccepted at 6" if c == "esp8266"
                                 else "accepted\npeer OSError 11\naccepted at 6")),
}


@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule(rule, chip, tmp_path):
    upstream, make = RULES[rule]
    code, want = make(chip)
    from microsctl.node.sim import free_port

    env = {"MICROS_SIM_WIFI": "home:pw@1200", "T_PORT": str(free_port())}
    if rule == "webrepl-password":
        port = free_port()
        env["MICROS_SIM_WEBREPL"] = str(port)
        want = want % port
    assert mp(chip, code, env, cwd=tmp_path) == want, f"{rule} on {chip} ({upstream})"


@pytest.mark.parametrize("chip", CHIPS)
def test_rule_rtc_across_reset(chip, tmp_path):
    """esp8266/machine_rtc.c: after a reset the RTC tick restarts at 0 while the delta in RTC
    memory stays, so the clock falls back by the uptime it had when it was set; the ESP32's
    keeps running (the IDF's RTC timer is not reset by esp_restart)."""
    env = {"MICROS_SIM_RTC": str(tmp_path / "rtc")}
    t = 800000000  # 2025-05-08 in the 2000 epoch
    mp(chip, "import time\ntime.sleep_ms(1500)\ntime.set_time(%d)\nprint(time.time())\n" % t, env)
    after = int(mp(chip, "import time\nprint(time.time())\n", env))  # the next boot: machine.reset()
    if chip == "esp8266":
        assert t - 3 <= after <= t - 1
    else:
        assert t <= after <= t + 2


def _upstream(path):
    p = subprocess.run(["git", "-C", UPSTREAM, "show", f"v1.28.0:{path}"], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"no MicroPython v1.28.0 sources at {UPSTREAM}")
    return p.stdout


def test_tcp_limits_and_pin_tables_agree_with_the_upstream_sources():
    """Where the MicroPython mirror is on this machine: chip.py's numbers from the sources."""
    sdk = _upstream("ports/esp32/boards/sdkconfig.base")
    assert "CONFIG_LWIP_MAX_ACTIVE_TCP=12" in sdk.splitlines()
    hdr = _upstream("ports/esp32/machine_pin.h")
    c3 = hdr[hdr.index("#elif CONFIG_IDF_TARGET_ESP32C3"):hdr.index("#elif CONFIG_IDF_TARGET_ESP32C5")]
    assert "#if !MICROPY_HW_ESP_USB_SERIAL_JTAG\n#define MICROPY_HW_ENABLE_GPIO18" in c3
    pin8266 = _upstream("ports/esp8266/machine_pin.c")
    assert "pin does not have IRQ capabilities" in pin8266 and "Pin(16) doesn't support pull" in pin8266
    pwm = _upstream("ports/esp8266/esppwm.c")
    assert "#define PWM_FREQ_MAX 1000" in pwm and "pin_num[PWM_CHANNEL] = {0, 2, 4, 5, 12, 13, 14, 15}" in pwm
    out = mp("esp32", "import chip\nprint(chip.TCP)\n")
    assert out == "12"


def _mirror(env, default, rev, path):
    repo = os.environ.get(env, default)
    p = subprocess.run(["git", "-C", repo, "show", f"{rev}:{path}"], capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f"no {rev}:{path} at {repo}")
    return p.stdout


def test_lwip_limits_agree_with_the_idf_and_esp_open_lwip_sources():
    """lwip.py's numbers: ESP-IDF v5.5.1 (the IDF of MicroPython v1.28.0's README and CI)
    components/lwip/Kconfig LWIP_MAX_SOCKETS default 10, which sdkconfig.base leaves;
    esp-open-lwip's tcp_listen_input drops a SYN at `==` MEMP_NUM_TCP_PCB, 5 by default."""
    readme = _upstream("ports/esp32/README.md")
    assert "current recommended version of ESP-IDF for MicroPython is v5.5.1" in readme
    assert "LWIP_MAX_SOCKETS" not in _upstream("ports/esp32/boards/sdkconfig.base")
    kconfig = _mirror("MICROS_IDF_MIRROR", "/work/.mirror/espressif+esp-idf/repo", "v5.5.1",
                      "components/lwip/Kconfig")
    block = kconfig[kconfig.index("config LWIP_MAX_SOCKETS"):][:200]
    assert "default 10" in block
    lwip = _mirror("MICROS_OPENLWIP_MIRROR", "/work/.mirror/pfalcon+esp-open-lwip/repo", "HEAD",
                   "lwip/core/tcp_in.c")
    assert "if (active_pcb_num == MEMP_NUM_TCP_PCB){" in lwip
    init = _mirror("MICROS_OPENLWIP_MIRROR", "/work/.mirror/pfalcon+esp-open-lwip/repo", "HEAD", "lwip/core/init.c")
    assert "MEMP_NUM_TCP_PCB = 5;" in init
    assert mp("esp32", "import chip\nprint(chip.SOCKETS, chip.TCP)\n") == "10 12"
    assert mp("esp8266", "import chip\nprint(chip.SOCKETS, chip.TCP)\n") == "0 5"


def test_ledc_rules_agree_with_the_upstream_sources():
    """ledc.py's texts and numbers: esp32/machine_pwm.c at v1.28.0; ESP-IDF v5.5.1 soc_caps.h."""
    src = _upstream("ports/esp32/machine_pwm.c")
    for text in ('"out of %sPWM timers:%d"', '"out of %sPWM channels:%d"', '"duty_u16 must be from 0 to %d"',
                 '"frequency must be from 1Hz to %dMHz"', "#define EMPIRIC_FREQ   (10)",
                 "check_freq_ranges(self, freq, 40000000);", "if (resolution >= SOC_LEDC_TIMER_BIT_WIDTH) {"):
        assert text in src, text
    for chip, want in (("esp32", "2,8,20,1"), ("esp32c3", "1,6,14,0"), ("esp32s3", "1,8,14,0")):
        caps = _mirror("MICROS_IDF_MIRROR", "/work/.mirror/espressif+esp-idf/repo", "v5.5.1",
                       f"components/soc/{chip}/include/soc/soc_caps.h")
        num = {k: v for k, v in (ln.split()[1:3] for ln in caps.splitlines()
                                 if ln.startswith("#define SOC_LEDC_") and len(ln.split()) >= 3)}
        modes = 2 if num.get("SOC_LEDC_SUPPORT_HS_MODE") == "(1)" else 1
        got = "%d,%s,%s,%d" % (modes, num["SOC_LEDC_CHANNEL_NUM"].strip("()"), num["SOC_LEDC_TIMER_BIT_WIDTH"].strip("()"),
                               num.get("SOC_LEDC_SUPPORT_REF_TICK") == "(1)")
        assert num["SOC_LEDC_TIMER_NUM"] == "(4)" and got == want, chip
        assert mp(chip, "import chip\nprint(','.join(str(x) for x in chip.LEDC))\n") == want


@pytest.mark.parametrize("variant, gone, kept", [("esp32+SPIRAM", (16, 17), (15, 18)),
                                                  ("esp32s3+SPIRAM_OCT", (26, 33, 35, 37), (21, 38, 48))])
def test_spiram_variants_lose_the_psram_pins(variant, gone, kept):
    """esp32/machine_pin.h: `#if !CONFIG_SPIRAM` (ESP32 GPIO 16, 17; S3 GPIO 26) and
    `#if !CONFIG_SPIRAM_MODE_OCT` (S3 GPIO 33-37); the variants' sdkconfig set them."""
    code = "import machine\nfor g in %r:\n    try:\n        machine.Pin(g)\n        print(g, 'ok')\n" \
           "    except ValueError as e:\n        print(g, e)\n" % (gone + kept,)
    want = ["%d invalid pin" % g for g in gone] + ["%d ok" % g for g in kept]
    assert mp(variant, code).splitlines() == want


def test_boards_pins_exist_on_every_variant_of_their_chip():
    """Each board's logical pins (board.json) are GPIOs of its chip's stock build and of each
    variant of board.json that has its own pin table in chips.py (chip+VARIANT)."""
    import json

    from microsctl.firmware import boards

    rows = mp("esp32", "import sys\nimport chips\nprint(' '.join(chips.ROWS))\n").split()
    for name in ("ESP32_GENERIC", "ESP32_GENERIC_C3", "ESP32_GENERIC_S3", "ESP8266_GENERIC"):
        b = boards.get(name)
        data = json.loads((b.dir / "board.json").read_text())
        keys = [b.chip] + [b.chip + "+" + v for v in data.get("variants", {}) if b.chip + "+" + v in rows]
        for key in keys:
            out = mp(key, "import machine\nfor g in %r:\n    machine.Pin(g)\nprint('ok')\n"
                     % sorted(set(b.pins.values())))
            assert out == "ok", (name, key)
    assert "esp32+SPIRAM" in rows and "esp32s3+SPIRAM_OCT" in rows


def test_spiram_pins_agree_with_the_upstream_sources():
    hdr = _upstream("ports/esp32/machine_pin.h")
    assert "#if !CONFIG_SPIRAM\n#define MICROPY_HW_ENABLE_GPIO16 (1)\n#define MICROPY_HW_ENABLE_GPIO17 (1)" in hdr
    assert "#if !CONFIG_SPIRAM\n#define MICROPY_HW_ENABLE_GPIO26 (1)" in hdr
    assert "#if !CONFIG_SPIRAM_MODE_OCT\n#define MICROPY_HW_ENABLE_GPIO33 (1)" in hdr
    assert "#if !CONFIG_USB_CDC_ENABLED" in hdr  # set nowhere at v1.28.0: GPIO 19/20 stay on the S3
    assert "boards/sdkconfig.spiram_sx" in _upstream("ports/esp32/boards/ESP32_GENERIC_S3/mpconfigboard.cmake")
    assert "CONFIG_SPIRAM=y" in _upstream("ports/esp32/boards/sdkconfig.spiram_sx").splitlines()
    assert "CONFIG_SPIRAM_MODE_OCT=y" in _upstream("ports/esp32/boards/sdkconfig.spiram_oct").splitlines()
    assert "boards/sdkconfig.spiram" in _upstream("ports/esp32/boards/ESP32_GENERIC/mpconfigvariant_SPIRAM.cmake")
    p = subprocess.run(["git", "-C", UPSTREAM, "grep", "-l", "USB_CDC_ENABLED", "v1.28.0"], capture_output=True,
                       text=True)
    assert p.stdout.split() == ["v1.28.0:ports/esp32/machine_pin.h"]


def test_board_modules_fit_the_chips_connection_limits():
    """The shell's client limit (boards/<B>/micros_board.py CLIENTS) leaves the busy reply and
    one more connection within the chip's lwIP limit (chip.py TCP; ESP32: LWIP_MAX_SOCKETS 10)."""
    from microsctl.firmware import boards
    from microsctl.flashing import fsimage  # noqa: F401 - board modules are read as text

    for name, limit in (("esp8266", 5), ("esp32", 10), ("esp32c3", 10), ("esp32s3", 10)):
        b = boards.get(name)
        text = (b.dir / "micros_board.py").read_text()
        clients = int(text.split("CLIENTS = const(")[1].split(")")[0])
        listening = 0 if name == "esp8266" else 2  # lwIP raw PCBs: listeners have their own pool
        assert clients + 2 + listening <= limit, name
        assert int(mp(name, "import chip\nprint(chip.TCP)\n")) >= clients + 2


def test_plain_sim_keeps_its_host_behaviour(tmp_path):
    """Without a chip the virtual board stays what it was: any GPIO 0..48, the host's clock."""
    e = dict(os.environ)
    e.pop("MICROS_SIM_CHIP", None)
    e.pop("MICROS_SIM_CLOCK", None)
    code = ("import sys\nsys.path[:0] = [%r]\nimport machine, time\nmachine.Pin(48).irq(handler=lambda p: 0)\n"
            "print(abs(time.time() - %d) < 5)\n" % (str(PORTS / "unix"), int(time.time())))
    p = subprocess.run([micropython(), "-c", code], capture_output=True, text=True, env=e, timeout=30)
    assert p.stdout.strip() == "True", p.stderr
