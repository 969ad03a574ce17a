"""Server-side proof that abandoned streams were aborted, from vLLM's own counters.

vLLM 0.32 never counts an abort in ``vllm:request_success_total{finished_reason="abort"}``
(it stays 0: a known bug). Its accounting still shows them: a request that produced its
first token is counted in ``vllm:time_to_first_token_seconds_count``; one that ran to its
end (stop, length) in ``vllm:request_success_total``; one still in the engine in
``vllm:num_requests_running`` / ``_waiting``. A request that started, did not finish and
is no longer in the engine was aborted. The count holds whether or not a later vLLM
fixes the abort label (aborts are excluded from "finished" either way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.clients.metrics import MetricsSnapshot, MetricsSource
from harness.errors import Unreachable

STARTED = "vllm:time_to_first_token_seconds_count"
FINISHED = "vllm:request_success_total"
RUNNING, WAITING = "vllm:num_requests_running", "vllm:num_requests_waiting"
ABORT_REASON = "abort"


@dataclass(frozen=True)
class EngineRequests:
    """One vLLM node's request accounting at one scrape (summed over engines)."""

    started: float
    finished: float      # ran to their end: every finished_reason but abort
    labelled_aborts: float  # finished_reason="abort": 0 on vLLM 0.32, kept for the report
    in_flight: float

    @classmethod
    def from_snapshot(cls, snap: MetricsSnapshot) -> EngineRequests:
        needed = (STARTED, FINISHED, RUNNING, WAITING)
        totals = {name: snap.total(name) for name in needed}
        read = {name: value for name, value in totals.items() if value is not None}
        if len(read) < len(needed):
            missing = [name for name in needed if name not in read]
            raise Unreachable(snap.url, "vLLM request accounting", f"absent: {', '.join(missing)}")
        outcomes = snap.get(FINISHED)
        aborts = sum(s.value for s in outcomes if s.labels.get("finished_reason") == ABORT_REASON)
        return cls(started=read[STARTED], finished=read[FINISHED] - aborts,
                   labelled_aborts=aborts, in_flight=read[RUNNING] + read[WAITING])


def read_engine_requests(nodes: Mapping[str, MetricsSource]) -> dict[str, EngineRequests]:
    """Every node's accounting now; :class:`Unreachable` if one cannot be read."""
    return {name: EngineRequests.from_snapshot(source.scrape()) for name, source in nodes.items()}


@dataclass(frozen=True)
class EngineAborts:
    """Requests each node started and then dropped before their end, between two reads."""

    by_node: Mapping[str, float]
    started: float
    finished: float
    labelled_aborts: float

    @property
    def total(self) -> float:
        return sum(self.by_node.values())

    def describe(self) -> str:
        nodes = ", ".join(f"{n} {v:g}" for n, v in sorted(self.by_node.items()))
        return (f"aborted {self.total:g} ({nodes}): started {self.started:g}, ran to their end "
                f"{self.finished:g}; finished_reason=abort counted {self.labelled_aborts:g}")


def engine_aborts(before: Mapping[str, EngineRequests],
                  after: Mapping[str, EngineRequests]) -> EngineAborts:
    """Started - finished - (still in flight - in flight before), per node."""
    by_node = {name: (now.started - before[name].started) - (now.finished - before[name].finished)
               - (now.in_flight - before[name].in_flight) for name, now in after.items()}
    return EngineAborts(
        by_node=by_node,
        started=sum(now.started - before[n].started for n, now in after.items()),
        finished=sum(now.finished - before[n].finished for n, now in after.items()),
        labelled_aborts=sum(now.labelled_aborts - before[n].labelled_aborts
                            for n, now in after.items()))
