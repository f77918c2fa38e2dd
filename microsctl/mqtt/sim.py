"""`invoke sim --mqtt [URL]`: the node's MQTT settings, and a Mosquitto for a local trial."""
from microsctl import MicrosError
from microsctl.mqtt.broker import Mosquitto, is_tls, mosquitto, parse_url


def settings(url):
    """--mqtt value -> (broker to start or None, KEY=VALUE settings for the node)."""
    broker = None
    if url is True:  # --mqtt alone
        if not mosquitto():
            raise MicrosError("--mqtt alone starts a local Mosquitto, which is not installed: "
                              "apt-get install mosquitto, or give a broker: --mqtt mqtt://host:port")
        broker = Mosquitto()
        url = broker.url
    host, port, user, password = parse_url(url)
    sets = ["mqtt=True", f"mqtthost={host}", f"mqttport={port}"]
    if is_tls(url):  # the broker's certificate unchecked unless mqttca names a CA file on the node
        sets.append("mqtttls=True")
    if user:
        sets.append(f"mqttuser={user}")
    if password:
        sets.append(f"mqttpwd={password}")
    return broker, sets


def describe(cfg, broker):
    where = f"{cfg['mqtthost']}:{cfg['mqttport']}"
    base = f"{cfg['mqttpfx']}/{cfg['devfid']}"
    print(f"[sim] MQTT: broker {where}{' (Mosquitto started for this trial)' if broker else ''}, "
          f"topics {base}/status|state|cmd|reply")
    print(f"[sim]   try: invoke mqtt-status --mqtt mqtt://{where}")


def run(node, broker):
    """Run the node in the foreground, with the trial broker (if any) around it."""
    if broker:
        broker.start()
    try:
        return node.run()
    finally:
        if broker:
            broker.__exit__(None, None, None)  # stopped, its temp config removed
