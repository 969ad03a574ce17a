"""Prometheus exposition of the proxies' counters.

Byte counters are plain integers on each link (no lock or metric object on
the data path); this collector sums them when ``/metrics`` is scraped. The
byte counters keep Toxiproxy's names and labels
(``toxiproxy_proxy_{received,sent}_bytes_total{direction,proxy,listener,upstream}``);
the others are llm-drill's additions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from harness.toxiproxy.state import Direction

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from harness.toxiproxy.proxy import Proxy

LABELS = ["proxy", "listener", "upstream"]


class ProxyCollector(Collector):
    """Reads the proxies' counters at scrape time."""

    def __init__(self, proxies: Sequence[Proxy]) -> None:
        self._proxies = proxies

    def collect(self) -> Iterable[Metric]:
        yield from self._bytes()
        yield from self._connections()
        yield self._toxics()
        yield self._injections()

    def _bytes(self) -> Iterable[Metric]:
        received = CounterMetricFamily(
            "toxiproxy_proxy_received_bytes", "Bytes read from the source, by stream direction",
            labels=["direction", *LABELS])
        sent = CounterMetricFamily(
            "toxiproxy_proxy_sent_bytes", "Bytes written to the destination, by stream direction",
            labels=["direction", *LABELS])
        for proxy in self._proxies:
            rx, tx = proxy.bytes_by_direction()
            for direction in Direction:
                labels = [direction.label, proxy.name, proxy.listen, proxy.upstream]
                received.add_metric(labels, rx[direction])
                sent.add_metric(labels, tx[direction])
        return [received, sent]

    def _connections(self) -> Iterable[Metric]:
        total = CounterMetricFamily(
            "toxiproxy_proxy_connections", "Client connections accepted", labels=LABELS)
        active = GaugeMetricFamily(
            "toxiproxy_proxy_active_connections", "Client connections open now", labels=LABELS)
        failures = CounterMetricFamily(
            "toxiproxy_proxy_upstream_connect_failures",
            "Accepted clients closed because the upstream could not be reached", labels=LABELS)
        for proxy in self._proxies:
            labels = [proxy.name, proxy.listen, proxy.upstream]
            total.add_metric(labels, proxy.stats.connections_total)
            active.add_metric(labels, len(proxy.connections))
            failures.add_metric(labels, proxy.stats.connect_failures)
        return [total, active, failures]

    def _toxics(self) -> Metric:
        gauge = GaugeMetricFamily(
            "toxiproxy_proxy_toxics_active", "Toxics configured on the proxy",
            labels=["proxy", "toxic", "type", "stream"])
        for proxy in self._proxies:
            for toxic in proxy.toxics():
                gauge.add_metric([proxy.name, toxic.name, toxic.kind.name, toxic.stream.label], 1)
        return gauge

    def _injections(self) -> Metric:
        counter = CounterMetricFamily(
            "toxiproxy_proxy_http_injections",
            ("Requests, responses or connections hit by an LLM extension toxic"
             " (sse_cut, sse_stall, http_error, hold_upstream)"),
            labels=["proxy", "toxic", "type"])
        for proxy in self._proxies:
            for (name, kind), count in proxy.stats.injections.items():
                counter.add_metric([proxy.name, name, kind], count)
        return counter


def render_metrics(proxies: Sequence[Proxy]) -> tuple[bytes, str]:
    """The exposition text for ``proxies`` and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProxyCollector(proxies))
    return generate_latest(registry), CONTENT_TYPE_LATEST
