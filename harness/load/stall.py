"""The load client's own stalls: when its event loop did not run, nothing it timed was
the stack's doing.

On a loaded host (a 2-core machine running two vLLM engines beside the harness) the
load thread was seen runnable yet unscheduled for up to 7.9 s while its loop waited in
``select``. A connect timeout of 2 s that fires after such a stall measured the client,
not the front door. :class:`LoopWatch` beats on the load's loop and keeps the gaps
between beats; :func:`ate_the_budget` says whether the stack really had a timed phase's
budget, so a timeout the client's stall ate is recorded as the client's (the request is
``cancelled="client_stalled"``, with the stall in ``client_stall_s``), never as a stack
failure, while a timeout the stack earned stays an error.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

BEAT_S = 0.05
STALL_MIN_S = 0.25  # shorter gaps are scheduling noise, never excused
KEPT_STALLS = 1_000


class LoopWatch:
    """Beats on the running loop (:meth:`run`) and answers how long it stalled.

    It keeps real time of its own (``now``, monotonic): a stall is the host's doing, so
    a load on a fake clock still measures it in seconds that really passed."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.stalls: deque[tuple[float, float]] = deque(maxlen=KEPT_STALLS)
        self._last_beat: float | None = None

    async def run(self) -> None:
        """Beat until cancelled."""
        self._last_beat = self.now()
        while True:
            await asyncio.sleep(BEAT_S)
            woke = self.now()
            self.note(self._last_beat + BEAT_S, woke)
            self._last_beat = woke

    def note(self, due: float, woke: float) -> None:
        """Record that a beat due at ``due`` ran at ``woke``."""
        if woke - due >= STALL_MIN_S:
            self.stalls.append((due, woke))

    def stalled(self, start: float, now: float) -> float:
        """Seconds of ``[start, now]`` the loop spent stalled (the stall it is only now
        waking from included)."""
        return sum(max(0.0, min(end, now) - max(begin, start)) for begin, end in self._spans(now))

    def _spans(self, now: float) -> list[tuple[float, float]]:
        spans = list(self.stalls)
        if self._last_beat is not None and now - (self._last_beat + BEAT_S) >= STALL_MIN_S:
            spans.append((self._last_beat + BEAT_S, now))
        return spans

    def stall_over(self, moment: float, now: float) -> float | None:
        """The length of the stall the loop was in at ``moment`` (the one it is only now
        waking from included: its beat has not run yet); None when it was running."""
        return next((end - begin for begin, end in self._spans(now) if begin <= moment <= end),
                    None)


def ate_the_budget(watch: LoopWatch, start: float, budget: float) -> float | None:
    """The client's stall when the timeout armed at ``start`` (the watch's time) for
    ``budget`` was the client's: it fell due while the loop was stalled (it fired late,
    and whatever the stack sent meanwhile went unread), or the loop was stalled for at
    least half the budget (the stack never had a fair window). None otherwise: a short
    stall that ended before the deadline leaves a silent stack its timeout."""
    now = watch.now()
    due = start + budget
    if now - due >= STALL_MIN_S and (over := watch.stall_over(due, now)) is not None:
        return over
    stalled = watch.stalled(start, now)
    return stalled if stalled >= max(STALL_MIN_S, budget / 2) else None
