"""/metrics of the embedded proxy (the real one needs -proxy-metrics and lacks ours)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.clients.toxiproxy import Proxy, ToxicSpec, ToxiproxyClient
from harness.waits import Probe, Wait
from tests.conformance.netutil import connect, recv_until_closed, round_trip

pytestmark = pytest.mark.usefixtures("extensions")


def sample(api: httpx.Client, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_bytes_and_connections_are_counted(api: httpx.Client,
                                           make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    with connect(proxy) as sock:
        round_trip(sock, b"x" * 1000)
        assert sample(api, "toxiproxy_proxy_active_connections", proxy=proxy.name) == 1
        for direction in ("upstream", "downstream"):
            assert sample(api, "toxiproxy_proxy_received_bytes_total",
                          proxy=proxy.name, direction=direction) == 1000
    Wait(within=2.0, interval=0.02).until("the connection counted as closed", lambda: Probe(
        sample(api, "toxiproxy_proxy_active_connections", proxy=proxy.name) == 0))
    assert sample(api, "toxiproxy_proxy_connections_total", proxy=proxy.name) == 1
    assert sample(api, "toxiproxy_proxy_sent_bytes_total",
                  proxy=proxy.name, direction="downstream") == 1000


def test_upstream_connect_failures_are_counted(api: httpx.Client,
                                               make_proxy: Callable[..., Proxy],
                                               closed_port: int) -> None:
    proxy = make_proxy(f"127.0.0.1:{closed_port}")
    for _ in range(2):
        with connect(proxy) as sock:
            recv_until_closed(sock)
    assert sample(api, "toxiproxy_proxy_upstream_connect_failures_total",
                  proxy=proxy.name) == 2


def test_active_toxics_and_injections(api: httpx.Client, client: ToxiproxyClient,
                                      make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("http")
    client.add_toxic(proxy.name, ToxicSpec("http_error", {"status": 503}, stream="upstream"))
    assert sample(api, "toxiproxy_proxy_toxics_active", proxy=proxy.name,
                  type="http_error") == 1
    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.listen_port}") as web:
        assert web.get("/v1/models").status_code == 503
    assert sample(api, "toxiproxy_proxy_http_injections_total", proxy=proxy.name,
                  type="http_error") == 1
