"""Mosquitto, the broker of record: started on loopback with a temp config, stopped after."""
import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from microsctl import MicrosError
from microsctl.run import show, stop_process

DEFAULT_PORT = 1883
TLS_PORT = 8883


def mosquitto():
    """Path of the mosquitto binary, or None (Debian puts it in /usr/sbin, often not on PATH)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def is_tls(url):
    """mqtts://: the broker speaks TLS."""
    return url.startswith("mqtts://")


def parse_url(url):
    """mqtt[s]://[user[:password]@]host[:port] -> (host, port, user, password)."""
    parts = urlsplit(url if "://" in url else "mqtt://" + url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise MicrosError(f"{url!r} is not a broker address: give mqtt://host:port, or mqtts://host:port for TLS")
    try:
        port = parts.port or (TLS_PORT if parts.scheme == "mqtts" else DEFAULT_PORT)
    except ValueError as err:
        raise MicrosError(f"{url!r}: the port is not a number 1..65535") from err
    return parts.hostname, port, parts.username, parts.password


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(port, passwd_file=None, tls=None):
    """tls: (CA file, certificate file, key file) of a TLS listener (mosquitto.conf(5))."""
    import getpass

    # run as root (CI), mosquitto would switch to the user "mosquitto", who cannot read the temp dir
    lines = [f"user {getpass.getuser()}", f"listener {port} 127.0.0.1", "persistence false"]
    if tls:
        lines += [f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"]
    if passwd_file:
        lines += ["allow_anonymous false", f"password_file {passwd_file}"]
    else:
        lines.append("allow_anonymous true")
    return "\n".join(lines) + "\n"


class Mosquitto:
    """One broker on 127.0.0.1: start(), restart(), stop(); users as {name: password};
    tls: (CA, certificate, key) files: a TLS listener (mqtts://)."""

    def __init__(self, port=None, users=None, tls=None):
        self.port = port or free_port()
        self.users = users or {}
        self.tls = tls
        self.proc = None
        self.dir = Path(tempfile.mkdtemp(prefix="micros-mosquitto-"))
        self.log = self.dir / "mosquitto.log"

    @property
    def url(self):
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def argv(self):
        exe = mosquitto()
        if not exe:
            raise MicrosError("mosquitto is not installed: apt-get install mosquitto (Debian/Ubuntu)")
        return [exe, "-c", str(self.dir / "mosquitto.conf")]

    def _write_config(self):
        pw = None
        if self.users:
            pw = self.dir / "passwd"
            pw.write_text("")
            pw.chmod(0o600)
            exe = shutil.which("mosquitto_passwd") or str(Path(mosquitto()).with_name("mosquitto_passwd"))
            for user, password in self.users.items():
                # argv not shown: it holds the password
                subprocess.run([exe, "-b", str(pw), user, password], check=True, capture_output=True)
        (self.dir / "mosquitto.conf").write_text(config_text(self.port, pw, self.tls))

    def start(self, timeout=10):
        argv = self.argv()
        self._write_config()
        show(argv)
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise MicrosError(f"mosquitto exited with status {self.proc.returncode}; see {self.log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise MicrosError(f"mosquitto did not listen on port {self.port} within {timeout} s; see {self.log}")

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def restart(self, down=0.0):
        self.stop()
        time.sleep(down)
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


AMQTT = "amqtt==0.12.1"  # the PyPI broker, pinned as in pyproject.toml's [broker] extra


def amqtt():
    """True when the amqtt package (a pure-Python MQTT 3.1.1 broker) is installed."""
    return importlib.util.find_spec("amqtt") is not None


class Amqtt(Mosquitto):
    """amqtt on 127.0.0.1, anonymous, for trials where Mosquitto is not installed
    (no users, no TLS: those need Mosquitto)."""

    def argv(self):
        if not amqtt():
            raise MicrosError(f"amqtt is not installed: pip install {AMQTT}")
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.dir / "amqtt.yaml")]

    def _write_config(self):
        if self.users or self.tls:
            raise MicrosError("the amqtt trial broker takes no users or TLS: install Mosquitto (apt-get install mosquitto)")
        # amqtt's own format (amqtt/scripts/default_broker.yaml), without its $SYS and packet log plugins
        (self.dir / "amqtt.yaml").write_text(
            "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:%d\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n" % self.port)


def embedded():
    """The broker `--mqtt` alone starts: Mosquitto when installed, else amqtt."""
    if mosquitto():
        return Mosquitto()
    if amqtt():
        return Amqtt()
    raise MicrosError("--mqtt alone starts a local broker, and none is installed: apt-get install mosquitto, "
                      f"or pip install {AMQTT}; or give one: --mqtt mqtt://host:port")
