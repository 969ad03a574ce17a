"""The partition fault's view from this host: what a connection meets."""

from __future__ import annotations

import socket

from harness.faults.partition import OPEN, REFUSED, reach
from harness.stack.node_network import interface_on


def test_a_listening_port_is_open() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert reach(f"127.0.0.1:{server.getsockname()[1]}", 1.0) == OPEN


def test_a_closed_port_refuses() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        assert reach(f"127.0.0.1:{port}", 1.0) == REFUSED


def test_the_loopback_subnet_is_in_use_and_an_unused_one_is_not() -> None:
    assert interface_on("127.0.0.0/8") == "lo"
    assert interface_on("10.254.253.0/24") == ""
