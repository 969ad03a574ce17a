"""A timeline of the stack during a drill, sampled on a background thread.

Each :class:`TimelineSample` holds, at one instant: per-node running / waiting /
KV usage, each gateway's view of its workers (health, circuit state), the front
door's server states, and the load generator's TTFT and error counters. Samples
come from the components' own ``/metrics`` (sub-scrape-interval), are bounded
(oldest dropped first, counted in :attr:`Timeline.dropped`) and serialise to
JSON for the drill journal.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import httpx

from harness.clients.metrics import (
    HttpMetricsSource,
    MetricsSnapshot,
    MetricsSource,
    NodeState,
    gateway_sources,
    node_sources,
)
from harness.errors import Unreachable
from harness.topology import Topology

CB_STATES = {0: "closed", 1: "open", 2: "half-open"}


@dataclass(frozen=True)
class NodeSample:
    node: str
    up: bool
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None


@dataclass(frozen=True)
class WorkerSample:
    """One gateway's view of one worker."""

    gateway: str
    worker: str
    healthy: bool | None
    circuit: str | None


@dataclass(frozen=True)
class BackendSample:
    """One front-door server and its HAProxy state (UP, DOWN, MAINT, ...)."""

    server: str
    state: str


@dataclass(frozen=True)
class ClientSample:
    """Load-generator counters (cumulative) and the mean TTFT since the previous sample."""

    requests: float
    errors: tuple[tuple[str, float], ...]
    ttft_count: float
    ttft_sum: float
    ttft_mean_s: float | None


@dataclass(frozen=True)
class TimelineSample:
    at: float
    nodes: tuple[NodeSample, ...]
    workers: tuple[WorkerSample, ...]
    frontdoor: tuple[BackendSample, ...]
    client: ClientSample | None
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimelineTargets:
    """Where the timeline reads from; any of them may be absent."""

    nodes: Mapping[str, MetricsSource] = field(default_factory=dict, hash=False)
    gateways: Mapping[str, MetricsSource] = field(default_factory=dict, hash=False)
    frontdoor: MetricsSource | None = None
    loadgen: MetricsSource | None = None

    @classmethod
    def from_topology(cls, topology: Topology, client: httpx.Client) -> TimelineTargets:
        return cls(nodes=node_sources(topology, client),
                   gateways=gateway_sources(topology, client),
                   frontdoor=HttpMetricsSource(
                       topology.url(topology.front_door.stats_port, "/metrics"), client),
                   loadgen=HttpMetricsSource(
                       topology.url(topology.load_exporter.port, "/metrics"), client))


def samples_to_json(samples: tuple[TimelineSample, ...]) -> str:
    return json.dumps([asdict(s) for s in samples])


class Timeline:
    """Samples :class:`TimelineTargets` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, targets: TimelineTargets, *, interval: float = 0.5,
                 max_samples: int = 20_000, wall: Callable[[], float] = time.time) -> None:
        self.targets = targets
        self.interval = interval
        self.dropped = 0
        self._wall = wall
        self._samples: deque[TimelineSample] = deque(maxlen=max_samples)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llm-drill-timeline",
                                        daemon=True)
        self._last_client: ClientSample | None = None

    def start(self) -> Timeline:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> tuple[TimelineSample, ...]:
        """Stop sampling (waits at most ``timeout`` for the thread) and return the samples."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return self.samples()

    def __enter__(self) -> Timeline:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def samples(self) -> tuple[TimelineSample, ...]:
        with self._lock:
            return tuple(self._samples)

    def to_json(self) -> str:
        return samples_to_json(self.samples())

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.sample_once()
            self._stopping.wait(self.interval)

    def sample_once(self) -> TimelineSample:
        """Take one sample now (the thread calls this; tests may too)."""
        unreachable: list[str] = []
        sample = TimelineSample(at=self._wall(), nodes=self._nodes(unreachable),
                                workers=self._workers(unreachable),
                                frontdoor=self._frontdoor(unreachable),
                                client=self._client(unreachable),
                                unreachable=tuple(unreachable))
        with self._lock:
            if len(self._samples) == self._samples.maxlen:
                self.dropped += 1
            self._samples.append(sample)
        return sample

    def _nodes(self, unreachable: list[str]) -> tuple[NodeSample, ...]:
        out = []
        for name, source in self.targets.nodes.items():
            snap = _try(source, name, unreachable)
            state = _node_state(name, snap)
            out.append(NodeSample(name, up=state is not None,
                                  running=state.running if state else None,
                                  waiting=state.waiting if state else None,
                                  kv_usage=state.kv_usage if state else None))
        return tuple(out)

    def _workers(self, unreachable: list[str]) -> tuple[WorkerSample, ...]:
        out: list[WorkerSample] = []
        for gateway, source in self.targets.gateways.items():
            snap = _try(source, gateway, unreachable)
            if snap is not None:
                out += _worker_samples(gateway, snap)
        return tuple(out)

    def _frontdoor(self, unreachable: list[str]) -> tuple[BackendSample, ...]:
        source = self.targets.frontdoor
        snap = _try(source, "frontdoor", unreachable) if source else None
        if snap is None:
            return ()
        return tuple(BackendSample(s.labels.get("server", ""), s.labels.get("state", ""))
                     for s in snap.get("haproxy_server_status") if s.value == 1)

    def _client(self, unreachable: list[str]) -> ClientSample | None:
        source = self.targets.loadgen
        snap = _try(source, "loadgen", unreachable) if source else None
        if snap is None:
            return None
        sample = _client_sample(snap, self._last_client)
        self._last_client = sample
        return sample


def _try(source: MetricsSource, name: str, unreachable: list[str]) -> MetricsSnapshot | None:
    try:
        return source.scrape()
    except Unreachable:
        unreachable.append(name)
        return None


def _node_state(name: str, snap: MetricsSnapshot | None) -> NodeState | None:
    if snap is None:
        return None
    try:
        return NodeState.from_snapshot(name, snap)
    except Unreachable:
        return None


def _worker_samples(gateway: str, snap: MetricsSnapshot) -> list[WorkerSample]:
    health = {s.labels.get("worker", ""): s.value for s in snap.get("vllm_router_worker_health")}
    circuit = {s.labels.get("worker", ""): s.value for s in snap.get("vllm_router_cb_state")}
    return [WorkerSample(gateway, worker,
                         healthy=bool(health[worker]) if worker in health else None,
                         circuit=CB_STATES.get(int(circuit[worker]), str(circuit[worker]))
                         if worker in circuit else None)
            for worker in sorted(health.keys() | circuit.keys())]


def _client_sample(snap: MetricsSnapshot, previous: ClientSample | None) -> ClientSample:
    errors = tuple(sorted((s.labels.get("type", ""), s.value)
                          for s in snap.get("llmdrill_client_errors_total")))
    count = snap.total("llmdrill_client_ttft_seconds_count") or 0.0
    total = snap.total("llmdrill_client_ttft_seconds_sum") or 0.0
    mean = None
    if previous is not None and count > previous.ttft_count:
        mean = (total - previous.ttft_sum) / (count - previous.ttft_count)
    return ClientSample(requests=snap.total("llmdrill_client_requests_total") or 0.0,
                        errors=errors, ttft_count=count, ttft_sum=total, ttft_mean_s=mean)
