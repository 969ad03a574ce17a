"""Blocking-socket helpers for measuring what a proxy does to a connection."""

from __future__ import annotations

import socket
import time

from harness.clients.toxiproxy import Proxy

IO_TIMEOUT_S = 5.0


def connect(proxy: Proxy, timeout: float = IO_TIMEOUT_S) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        part = sock.recv(count - len(data))
        if not part:
            raise ConnectionError(f"closed after {len(data)} of {count} bytes")
        data += part
    return bytes(data)


def recv_until_closed(sock: socket.socket, limit: int = 1 << 24) -> bytes:
    data = bytearray()
    while len(data) < limit:
        part = sock.recv(65536)
        if not part:
            return bytes(data)
        data += part
    raise AssertionError(f"more than {limit} bytes and still open")


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Send ``payload`` to an echo upstream, wait for it back; seconds taken."""
    started = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - started


def is_open_and_silent(sock: socket.socket, window_s: float) -> bool:
    """True if nothing (no data, no close) arrives within ``window_s``."""
    sock.settimeout(window_s)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(IO_TIMEOUT_S)
    return False
