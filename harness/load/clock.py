"""The load generator's clock, injected so unit tests get deterministic timings."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class LoadClock(Protocol):
    """``now`` is monotonic seconds (durations), ``wall`` is epoch seconds (``sent_at``)."""

    def now(self) -> float: ...
    def wall(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.perf_counter`` for durations, as vLLM's benchmark uses."""

    def now(self) -> float:
        return time.perf_counter()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told (``advance``) or slept on; for tests."""

    def __init__(self, start: float = 1_000.0, wall_offset: float = 1.7e9) -> None:
        self.t = start
        self.wall_offset = wall_offset
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t + self.wall_offset

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # let ready tasks read the time before it moves
        self.t += max(0.0, seconds)
