"""KV-cache release: every node idle, KV at baseline, generation stopped.

Read straight from each node's ``/metrics`` (not Prometheus), so the check
resolves well under a scrape interval: vLLM frees KV within ~0.5 s of a client
disconnect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import DrillFailed, NotReady, Unreachable
from harness.observe.metrics import MetricsSource, NodeState
from harness.waits import Clock, MonotonicClock, Probe, Wait


@dataclass(frozen=True)
class KVRelease:
    """Proof of release: how long it took and each node's final state."""

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
                       clock: Clock | None = None) -> KVRelease:
    """Wait until every node has 0 running, 0 waiting, KV <= baseline and flat token counters.

    ``baseline`` is one KV fraction for all nodes or one per node name. The
    generation counters are read twice, ``flat_for`` seconds apart (an observation
    window, not a wait). Raises :class:`DrillFailed` with each node's last state.
    """
    clock = clock or MonotonicClock()
    started = clock.now()

    def probe() -> Probe[KVRelease]:
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
        return Probe(done=True, value=KVRelease(clock.now() - started, tuple(later.values())))

    wait = Wait(within=within, interval=interval, transient=(), clock=clock)
    try:
        result = wait.until(f"KV cache released on {', '.join(nodes)}", probe)
    except NotReady as exc:
        raise DrillFailed("KV cache released", str(exc)) from exc
    assert result is not None
    return result
