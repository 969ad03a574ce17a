"""Toxics measured on real loopback sockets through the proxy."""

from __future__ import annotations

import contextlib
import socket
import statistics
import time
from collections.abc import Callable

import pytest

from harness.clients.toxiproxy import Proxy, ToxicSpec, ToxiproxyClient
from harness.waits import Wait
from tests.conformance.netutil import (
    connect,
    is_open_and_silent,
    recv_exactly,
    recv_until_closed,
    round_trip,
)

MakeProxy = Callable[..., Proxy]


def median_rtt(sock: socket.socket, samples: int = 5) -> float:
    return statistics.median(round_trip(sock) for _ in range(samples))


def test_no_toxic_passes_data_unchanged(make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    payload = bytes(range(256)) * 4096  # 1 MiB
    with connect(proxy) as sock:
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        assert median_rtt(sock) < 0.05


def test_latency_adds_delay(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 100}))
    with connect(proxy) as sock:
        rtt = median_rtt(sock, 3)
    assert 0.095 <= rtt < 0.18


def test_latency_on_both_streams_adds_up(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 60}, stream="upstream"))
    client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 60}))
    with connect(proxy) as sock:
        assert 0.115 <= median_rtt(sock, 3) < 0.2


def test_latency_update_and_removal_on_a_live_connection(
        client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    with connect(proxy) as sock:
        assert median_rtt(sock) < 0.05
        client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 150}))
        assert median_rtt(sock, 2) >= 0.14
        client.update_toxic(proxy.name, "latency_downstream", attributes={"latency": 40})
        assert 0.035 <= median_rtt(sock, 3) < 0.12
        client.remove_toxic(proxy.name, "latency_downstream")
        assert median_rtt(sock) < 0.03


def test_limit_data_cuts_after_exactly_n_bytes(client: ToxiproxyClient,
                                               make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("limit_data", {"bytes": 1000}))
    with connect(proxy) as sock:
        sock.sendall(b"a" * 600)
        assert recv_exactly(sock, 600) == b"a" * 600
        sock.sendall(b"b" * 600)
        assert recv_until_closed(sock) == b"b" * 400


def test_reset_peer_resets_the_client(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("reset_peer", {"timeout": 0}))
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            recv_until_closed(sock)


def test_reset_peer_waits_its_timeout(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("reset_peer", {"timeout": 200}))
    with connect(proxy) as sock:
        started = time.perf_counter()
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            recv_until_closed(sock)
        assert 0.19 <= time.perf_counter() - started < 1.0


def test_timeout_zero_holds_the_connection_until_removed(
        client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("timeout", {"timeout": 0}))
    with connect(proxy) as sock:
        sock.sendall(b"hello")
        assert is_open_and_silent(sock, 0.3)  # held: no data, no close
        client.remove_toxic(proxy.name, "timeout_downstream")
        # Removing a timeout toxic closes the connections it held (Toxiproxy's Cleanup).
        assert recv_until_closed(sock) == b""


def test_timeout_closes_after_the_idle_timeout(client: ToxiproxyClient,
                                               make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("timeout", {"timeout": 200}))
    with connect(proxy) as sock:
        started = time.perf_counter()
        sock.sendall(b"hello")
        assert recv_until_closed(sock) == b""
        assert 0.18 <= time.perf_counter() - started < 1.0


def test_bandwidth_is_roughly_respected(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("source")
    client.add_toxic(proxy.name, ToxicSpec("bandwidth", {"rate": 100}))  # 100 KB/s
    with connect(proxy) as sock:
        started = time.perf_counter()
        sock.sendall(b"30000\n")
        assert len(recv_until_closed(sock)) == 30000
        elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 0.6  # 30 KB at 100 KB/s = 0.3 s


def test_slicer_splits_data(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec(
        "slicer", {"average_size": 10, "size_variation": 0, "delay": 20_000}))
    payload = bytes(range(200))
    with connect(proxy) as sock:
        sock.sendall(payload)
        reads: list[bytes] = []
        while sum(map(len, reads)) < len(payload):
            reads.append(sock.recv(65536))
            assert reads[-1], "closed early"
    assert b"".join(reads) == payload
    assert len(reads) >= 8
    assert max(map(len, reads)) <= 40


def test_slow_close_delays_the_close(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("reply_and_close")
    client.add_toxic(proxy.name, ToxicSpec("slow_close", {"delay": 250}))
    with connect(proxy) as sock:
        sock.sendall(b"bye")
        assert recv_exactly(sock, 3) == b"bye"
        started = time.perf_counter()
        assert recv_until_closed(sock) == b""
        assert 0.2 <= time.perf_counter() - started < 1.0


def test_toxicity_zero_never_applies(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 200}, toxicity=0.0))
    with connect(proxy) as sock:
        assert median_rtt(sock) < 0.05


def test_toxicity_is_drawn_per_connection(client: ToxiproxyClient, make_proxy: MakeProxy,
                                          embedded: bool) -> None:
    if not embedded:
        pytest.skip("the real server's random source is not seeded by this suite")
    proxy = make_proxy("echo")
    client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 40}, toxicity=0.5))
    slow = []
    for _ in range(12):
        with connect(proxy) as sock:
            rtts = [round_trip(sock) for _ in range(2)]
            assert (min(rtts) >= 0.035) == (max(rtts) >= 0.035)  # same draw all connection
            slow.append(min(rtts) >= 0.035)
    assert 0 < sum(slow) < len(slow)


def test_disabled_proxy_closes_live_connections_and_refuses_new(
        client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    with connect(proxy) as sock:
        round_trip(sock)
        client.update_proxy(proxy.name, enabled=False)
        with contextlib.suppress(ConnectionResetError):  # closed either way
            assert recv_until_closed(sock) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(proxy, timeout=1.0).close()
    client.update_proxy(proxy.name, enabled=True)
    with connect(proxy) as sock:
        round_trip(sock)


def test_unreachable_upstream_closes_clients_promptly(
        client: ToxiproxyClient, make_proxy: MakeProxy, closed_port: int) -> None:
    proxy = make_proxy(f"127.0.0.1:{closed_port}")
    for _ in range(3):
        with connect(proxy, timeout=2.0) as sock:
            started = time.perf_counter()
            assert recv_until_closed(sock) == b""
            assert time.perf_counter() - started < 1.0
    assert client.proxy(proxy.name).enabled  # still up


def test_many_toxics_on_a_live_connection_keep_data_in_order(
        client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    with connect(proxy) as sock:
        client.add_toxic(proxy.name, ToxicSpec("latency", {"latency": 5}, name="a"))
        client.add_toxic(proxy.name, ToxicSpec("slicer", {"average_size": 100, "delay": 10},
                                               name="b"))
        payload = bytes(i % 251 for i in range(100_000))
        sock.sendall(payload[:50_000])
        client.remove_toxic(proxy.name, "a")
        sock.sendall(payload[50_000:])
        client.remove_toxic(proxy.name, "b")
        assert recv_exactly(sock, len(payload)) == payload
        Wait(within=2.0, interval=0.01).until_true(
            "the link back on its fast path", lambda: round_trip(sock) < 0.01)
