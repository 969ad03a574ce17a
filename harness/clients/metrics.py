"""Scrape a component's ``/metrics`` directly, faster than Prometheus' scrape interval.

The exposition text is parsed by :mod:`harness.clients.exposition`; values come back
as :class:`MetricsSnapshot`, from which :class:`NodeState` reads what a drill
asks of a vLLM node (running, waiting, KV usage, generated tokens).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from harness.clients.exposition import samples as exposition_samples
from harness.errors import Unreachable
from harness.topology import Topology


@dataclass(frozen=True)
class MetricSample:
    """One sample line: its full name (``..._total``, ``..._bucket``), labels and value."""

    name: str
    labels: Mapping[str, str] = field(hash=False)
    value: float


@dataclass(frozen=True)
class MetricsSnapshot:
    """Every sample of one scrape, with where and when it was taken (unix time)."""

    url: str
    taken_at: float
    samples: tuple[MetricSample, ...]

    def get(self, name: str, **labels: str) -> tuple[MetricSample, ...]:
        """Samples called ``name`` whose labels include ``labels``."""
        return tuple(s for s in self.samples if s.name == name
                     and all(s.labels.get(k) == v for k, v in labels.items()))

    def total(self, name: str, **labels: str) -> float | None:
        """Sum of the matching samples, or None when the metric is absent."""
        found = self.get(name, **labels)
        return math.fsum(s.value for s in found) if found else None

    def maximum(self, name: str, **labels: str) -> float | None:
        found = self.get(name, **labels)
        return max(s.value for s in found) if found else None


def parse_metrics(text: str, *, url: str = "", taken_at: float = 0.0) -> MetricsSnapshot:
    """Parse Prometheus exposition text into a snapshot."""
    samples = tuple(MetricSample(name, labels, value)
                    for name, labels, value in exposition_samples(text))
    return MetricsSnapshot(url=url, taken_at=taken_at, samples=samples)


def scrape(client: httpx.Client, url: str, *, timeout: float = 2.0,
           now: Callable[[], float] = time.time) -> MetricsSnapshot:
    """GET ``url`` and parse it; :class:`Unreachable` if it does not answer 200."""
    try:
        response = client.get(url, timeout=timeout)
    except httpx.TransportError as exc:
        raise Unreachable(url, "a /metrics page", f"{type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise Unreachable(url, "a /metrics page", f"HTTP {response.status_code}")
    try:
        return parse_metrics(response.text, url=url, taken_at=now())
    except ValueError as exc:
        raise Unreachable(url, "Prometheus exposition text", str(exc)) from exc


def histogram_buckets(snap: MetricsSnapshot, name: str) -> dict[float, float]:
    """``name``'s cumulative buckets (``<name>_bucket``) summed over every other label,
    keyed by their upper bound ``le`` (``+Inf`` as infinity)."""
    buckets: dict[float, float] = {}
    for sample in snap.get(f"{name}_bucket"):
        bound = float(sample.labels.get("le", "nan"))
        buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def quantile_bound(before: Mapping[float, float], after: Mapping[float, float],
                   q: float) -> tuple[float, float]:
    """The smallest bucket bound holding the ``q`` quantile of what a histogram counted
    between two readings, and how many it counted; ``(nan, 0)`` when it counted none.
    The true quantile lies at or below the bound (a bucket's resolution)."""
    counted = {le: after[le] - before.get(le, 0.0) for le in after}
    total = counted.get(math.inf, 0.0)
    if total <= 0:
        return math.nan, 0.0
    bound = min(le for le, n in counted.items() if n >= q * total)
    return bound, total


class MetricsSource(Protocol):
    """Anything that yields a fresh snapshot of one component's metrics."""

    def scrape(self) -> MetricsSnapshot: ...


@dataclass(frozen=True)
class HttpMetricsSource:
    """A component's ``/metrics`` URL read through an injected client."""

    url: str
    client: httpx.Client = field(compare=False)
    timeout: float = 2.0

    def scrape(self) -> MetricsSnapshot:
        return scrape(self.client, self.url, timeout=self.timeout)


@dataclass(frozen=True)
class NodeState:
    """What a vLLM node reports about its load (summed over engines; KV is the max)."""

    node: str
    running: float
    waiting: float
    kv_usage: float
    generation_tokens: float

    @classmethod
    def from_snapshot(cls, node: str, snap: MetricsSnapshot) -> NodeState:
        missing = [n for n in _NODE_METRICS if not snap.get(n)]
        if missing:
            raise Unreachable(snap.url, "vLLM engine metrics", f"absent: {', '.join(missing)}")
        return cls(node=node,
                   running=snap.total("vllm:num_requests_running") or 0.0,
                   waiting=snap.total("vllm:num_requests_waiting") or 0.0,
                   kv_usage=snap.maximum("vllm:kv_cache_usage_perc") or 0.0,
                   generation_tokens=snap.total("vllm:generation_tokens_total") or 0.0)

    def describe(self) -> str:
        return (f"{self.node}: running={self.running:g} waiting={self.waiting:g} "
                f"kv={self.kv_usage:.3f} gen_tokens={self.generation_tokens:g}")


_NODE_METRICS = ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total")


def node_sources(topology: Topology, client: httpx.Client) -> dict[str, MetricsSource]:
    """Direct ``/metrics`` of every vLLM node (canary included), by node name."""
    return {n.name: HttpMetricsSource(topology.node_url(n.name, "/metrics"), client)
            for n in topology.all_nodes()}


def gateway_sources(topology: Topology, client: httpx.Client) -> dict[str, MetricsSource]:
    """The vllm-router metrics port of every gateway, by gateway name."""
    return {g.name: HttpMetricsSource(topology.url(g.metrics_port, "/metrics"), client)
            for g in topology.gateways}
