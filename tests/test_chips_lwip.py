"""The chip's lwIP connection limit at the transport level (ports/unix/lwip.py), with the
node on it: more connections than the chip allows. The shell keeps its CLIENTS slots and
its slot policy within the chip's pool; past the pool a new connection fails as lwIP
fails it (ESP32: ESP-IDF v5.5.1 LWIP_MAX_SOCKETS 10, esp-lwip sockets.c lwip_accept ->
ENFILE, the connection closed without a byte; ESP8266: esp-open-lwip tcp_in.c
tcp_listen_input drops the SYN at MEMP_NUM_TCP_PCB 5 active connections, here a reset),
while the clients already in are served and a connection gets in again once room is made.
"""
import socket
import time

import pytest

from microsctl.node.client import Shell
from microsctl.node.sim import free_port
from tests.test_chip_node import CHIPS, clients_of
from tests.test_harden import connect, read_reply

# what counts against the pool besides the shell's clients: ESP32, every socket (the
# shell's listening one too); ESP8266, active TCP connections only (listeners apart)
POOL = {"esp8266": (5, 0), "esp32": (10, 1), "esp32c3": (10, 1), "esp32s3": (10, 1)}


def _fails_at_transport(chip, s):
    """The connection ends before the node sends a byte: closed (ESP32) or reset (ESP8266)."""
    try:
        data = s.recv(64)
    except ConnectionResetError:
        return chip == "esp8266"
    return data == b"" and chip != "esp8266"


@pytest.mark.parametrize("chip", CHIPS)
def test_more_connections_than_the_chip_allows(make_node, chip):
    pool, listening = POOL[chip]
    clients = clients_of(chip)
    sink = socket.socket()  # where the node's own connections go (an LM's, MQTT's)
    sink.bind(("127.0.0.1", free_port()))
    sink.listen(16)
    n = make_node(board=chip)
    socks = []
    try:
        with Shell(n.port) as cmd:  # one of the node's clients
            # the pool less the listener, the clients and one for a new client's slot
            room = pool - listening - clients - 1
            assert room >= 1, "the board's CLIENTS leaves no connection for the node's own use"
            assert cmd.cmd("sim hold %d %d" % (room, sink.getsockname()[1])) == "held %d" % room
            # the other clients (one address holds all slots but one: micros.shell._admit)
            socks = [connect(n.port) for _ in range(clients - 2)] + [connect(n.port, "127.0.0.2")]
            for s in socks:  # idle in this order (ticks_ms apart)
                read_reply(s)
                s.sendall(b"hello\n")
                assert read_reply(s)[0].startswith("hello:")
                time.sleep(0.01)
            assert cmd.cmd("hello").startswith("hello:")  # socks[0] is now the longest idle
            # within the pool: one more client gets in, the longest-idle gives its slot up
            extra = connect(n.port, "127.0.0.3")
            read_reply(extra)
            extra.sendall(b"hello\n")
            assert read_reply(extra)[0].startswith("hello:")
            text, closed = read_reply(socks[0])
            assert closed and "slot given to a new client" in text
            socks[0].close()
            socks[0] = extra
            # the node takes one more connection of its own: the pool is full
            assert cmd.cmd("sim hold 1 %d" % sink.getsockname()[1]) == "held %d" % (room + 1)
            try:
                late = connect(n.port, "127.0.0.3")
            except ConnectionResetError:  # the reset came before connect() returned
                assert chip == "esp8266"
            else:
                assert _fails_at_transport(chip, late), chip
                late.close()
            # ... and the clients in are still served
            for s in socks:
                s.sendall(b"hello\n")
                assert read_reply(s)[0].startswith("hello:")
            assert cmd.cmd("hello").startswith("hello:")
            # room again: a new client gets in (the longest-idle gives its slot up)
            assert cmd.cmd("sim hold 0") == "held 0"
            again = connect(n.port, "127.0.0.3")
            socks.append(again)
            read_reply(again)
            again.sendall(b"hello\n")
            assert read_reply(again)[0].startswith("hello:")
    finally:
        for s in socks:
            s.close()
        sink.close()
