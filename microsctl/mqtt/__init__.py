"""MQTT on the host: a Mosquitto broker for tests, trials and benchmarks (broker.py), and
what a fleet's retained messages say (status.py). May import firmware, flashing, node."""
