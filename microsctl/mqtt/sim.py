"""`invoke sim --mqtt [URL]`: the node's MQTT settings, and a broker for a local trial."""
from microsctl.mqtt.broker import Mosquitto, embedded, is_tls, parse_url


def settings(url):
    """--mqtt value -> (broker to start or None, KEY=VALUE settings for the node)."""
    broker = None
    if url is True:  # --mqtt alone: Mosquitto, else amqtt (microsctl/mqtt/broker.py)
        broker = embedded()
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
    kind = "Mosquitto" if type(broker) is Mosquitto else "amqtt"
    print(f"[sim] MQTT: broker {where}{f' ({kind} started for this trial)' if broker else ''}, "
          f"topics {base}/status|state|cmd|reply")
    print(f"[sim]   try: invoke mqtt-status --mqtt {'mqtts' if cfg.get('mqtttls') else 'mqtt'}://{where}")


def run(node, broker):
    """Run the node in the foreground, with the trial broker (if any) around it."""
    if broker:
        broker.start()
    try:
        return node.run()
    finally:
        if broker:
            broker.__exit__(None, None, None)  # stopped, its temp config removed
