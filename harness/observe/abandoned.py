"""Which abandoned streams the engines aborted, request by request, from the stack's logs.

The front door's log names each stream whose client left while it was being sent (``CD``)
and when the client left; the node that took it logs when its engine took it (``Added
request cmpl-fd-...``) and, if the disconnect reached the engine before it had generated
the whole answer, when it aborted it (``Aborted request(s) ...``). A node ends a long
answer in about a second on this machine, so a client that leaves seconds after its node
took the request may find the answer generated and only being sent: nothing was left to
abort. A client that left *soon* after its node took it (``young_within_s``) left while
the engine was still generating: the disconnect must reach the engine and abort it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.observe.front_door_log import FrontDoorRequest
from harness.observe.request_log import RequestLog


@dataclass(frozen=True)
class AbandonedStream:
    """One stream whose client left mid-response, and what its node did with it."""

    request_id: str
    node: str
    age_s: float                 # from its node taking it to its client leaving
    abort_lag_s: float | None    # from its client leaving to its node aborting it

    @property
    def aborted(self) -> bool:
        return self.abort_lag_s is not None


@dataclass(frozen=True)
class AbandonedStreams:
    """The abandoned streams a node took, and those no node's log names."""

    streams: Sequence[AbandonedStream]
    untraced: int                # left mid-response, taken by no node (by its log)

    def young(self, within_s: float) -> list[AbandonedStream]:
        """Those whose client left within ``within_s`` of the node taking them."""
        return [s for s in self.streams if s.age_s <= within_s]

    def abort_lags(self) -> list[float]:
        return sorted(s.abort_lag_s for s in self.streams if s.abort_lag_s is not None)


def _traced(request: FrontDoorRequest, logs: Iterable[RequestLog]) -> AbandonedStream | None:
    """The stream as the node that took it logged it (the last node, when retried)."""
    found: AbandonedStream | None = None
    for log in logs:
        for engine_id in log.engine_ids_of(request.request_id):
            aborted_at = log.aborted_at.get(engine_id)
            candidate = AbandonedStream(
                request_id=request.request_id, node=log.node,
                age_s=request.ended_at - log.added_at[engine_id],
                abort_lag_s=None if aborted_at is None else aborted_at - request.ended_at)
            if found is None or candidate.age_s < found.age_s:
                found = candidate
    return found


def abandoned_streams(left: Iterable[FrontDoorRequest],
                      logs: Sequence[RequestLog]) -> AbandonedStreams:
    """Pair each stream the front door saw abandoned with its node's log."""
    streams: list[AbandonedStream] = []
    untraced = 0
    for request in left:
        stream = _traced(request, logs)
        if stream is None:
            untraced += 1
        else:
            streams.append(stream)
    return AbandonedStreams(streams, untraced)
