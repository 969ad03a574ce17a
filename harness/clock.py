"""The one clock: monotonic time for durations, wall time for timestamps, and sleeping.

Everything that measures or waits takes a :class:`Clock` (waits, the observers, the
load generator), so unit tests inject one fake clock (``tests/fakes.py``) and run
without real time passing. It stands on floor 0: it imports nothing of the project.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """``now`` is monotonic seconds (durations, deadlines: comparable with
    ``time.monotonic()``), ``wall`` is epoch seconds (timestamps). ``sleep`` blocks the
    thread; ``sleep_async`` yields to the event loop."""

    def now(self) -> float: ...
    def wall(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    async def sleep_async(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class StoppableClock(SystemClock):
    """The real clock whose ``sleep`` ends early once ``stop`` is set (a long-lived loop
    that must answer SIGTERM between ticks hours apart)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def sleep(self, seconds: float) -> None:
        self.stop.wait(max(0.0, seconds))
