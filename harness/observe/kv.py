"""KV-cache release: every node idle, KV at baseline, generation stopped.

Read straight from each node's ``/metrics`` (not Prometheus), so the check
resolves well under a scrape interval: vLLM frees KV within ~0.5 s of a client
disconnect.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from harness.clients.metrics import MetricsSource, NodeState
from harness.clock import Clock, SystemClock
from harness.errors import DrillFailed, NotReady, Unreachable
from harness.observe.recovery import time_to_recover
from harness.waits import Probe


@dataclass(frozen=True)
class KVRelease:
    """Proof of release: seconds from ``since`` to the first reading of the released
    state (that then stayed flat), and each node's final state."""

    elapsed_s: float
    nodes: tuple[NodeState, ...]


def _baseline_for(baseline: float | Mapping[str, float], node: str) -> float:
    return baseline if isinstance(baseline, float | int) else baseline[node]


def _idle(state: NodeState, baseline: float) -> bool:
    return state.running == 0 and state.waiting == 0 and state.kv_usage <= baseline


def _read(nodes: Mapping[str, MetricsSource]) -> dict[str, NodeState]:
    return {name: NodeState.from_snapshot(name, src.scrape()) for name, src in nodes.items()}


def assert_kv_released(nodes: Mapping[str, MetricsSource], baseline: float | Mapping[str, float],
                       *, within: float, flat_for: float = 0.5, interval: float = 0.1,
                       since: float | None = None, clock: Clock | None = None) -> KVRelease:
    """Wait until every node has 0 running, 0 waiting, KV <= baseline and flat token counters.

    ``baseline`` is one KV fraction for all nodes or one per node name. The
    generation counters are read twice, ``flat_for`` seconds apart (an observation
    window, not a wait). ``elapsed_s`` is measured by :func:`time_to_recover` from
    ``since`` (wall clock: the end of the fault; default the call). Raises
    :class:`DrillFailed` with each node's last state.
    """
    clock = clock or SystemClock()
    since = clock.wall() if since is None else since

    def probe() -> Probe[tuple[NodeState, ...]]:
        try:
            first = _read(nodes)
            busy = [s for s in first.values() if not _idle(s, _baseline_for(baseline, s.node))]
            if busy:
                return Probe(done=False, seen="; ".join(s.describe() for s in busy))
            clock.sleep(flat_for)
            later = _read(nodes)
        except Unreachable as exc:
            return Probe(done=False, seen=str(exc))
        moving = [s for s in later.values()
                  if s.generation_tokens != first[s.node].generation_tokens
                  or not _idle(s, _baseline_for(baseline, s.node))]
        if moving:
            return Probe(done=False, seen="still generating: " + "; ".join(
                f"{s.describe()} (was {first[s.node].generation_tokens:g})" for s in moving))
        return Probe(done=True, value=tuple(later.values()))

    try:
        released = time_to_recover(probe, since=since, within=within, interval=interval,
                                   awaited=f"KV cache released on {', '.join(nodes)}",
                                   clock=clock)
    except NotReady as exc:
        raise DrillFailed("KV cache released", str(exc)) from exc
    assert released.reached is not None
    return KVRelease(released.seconds, released.reached)


@dataclass(frozen=True)
class KVPeak:
    """The highest KV usage each node reported while :class:`KVPeakSampler` ran."""

    by_node: Mapping[str, float]
    samples: int
    unreadable: int

    @property
    def highest(self) -> float:
        return max(self.by_node.values(), default=0.0)

    def describe(self) -> str:
        nodes = ", ".join(f"{n} {v:.2f}" for n, v in sorted(self.by_node.items()))
        return f"peak KV usage {nodes} ({self.samples} samples, {self.unreadable} unreadable)"


class KVPeakSampler:
    """Reads every node's ``vllm:kv_cache_usage_perc`` each ``interval`` seconds on a
    background thread while the ``with`` block runs (the fault), keeping each node's
    peak. A scrape that fails (a saturated host answers late) is counted, not read as 0;
    :meth:`peak` raises :class:`Unreachable` when no scrape at all succeeded."""

    def __init__(self, nodes: Mapping[str, MetricsSource], *, interval: float = 0.1) -> None:
        self.nodes, self.interval = dict(nodes), interval
        self._peaks: dict[str, float] = {}
        self._samples = self._unreadable = 0
        self._last_error: Unreachable | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kv-peak", daemon=True)

    def __enter__(self) -> KVPeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)

    def sample_once(self) -> None:
        try:
            states = _read(self.nodes)
        except Unreachable as exc:
            self._unreadable += 1
            self._last_error = exc
            return
        self._samples += 1
        for name, state in states.items():
            self._peaks[name] = max(self._peaks.get(name, 0.0), state.kv_usage)

    def peak(self) -> KVPeak:
        if not self._samples:
            raise Unreachable(", ".join(self.nodes), "vllm:kv_cache_usage_perc during the fault",
                              str(self._last_error or "no sample taken"))
        return KVPeak(dict(self._peaks), self._samples, self._unreadable)

    def _run(self) -> None:
        self.sample_once()  # at least one reading, however short the block
        while not self._stop.wait(self.interval):
            self.sample_once()
