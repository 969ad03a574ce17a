"""Waiting on conditions: one poll loop, always with a deadline.

A wait never sleeps blindly: it polls a probe until it reports success or the
deadline passes, then raises :class:`NotReady` with the last thing it saw.
The clock is injected so unit tests run without real time passing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from harness.clock import Clock, SystemClock
from harness.errors import NotReady

T = TypeVar("T")


@dataclass(frozen=True)
class Probe(Generic[T]):
    """The outcome of one poll: done or not, with the value and a description."""

    done: bool
    value: T | None = None
    seen: str = ""


@dataclass(frozen=True)
class Wait:
    """A wait strategy: how long, how often, which exceptions mean 'not yet'."""

    within: float
    interval: float = 0.2
    transient: tuple[type[BaseException], ...] = (OSError,)
    clock: Clock = field(default_factory=SystemClock)

    def until(self, awaited: str, probe: Callable[[], Probe[T]]) -> T | None:
        """Poll ``probe`` until it is done; return its value or raise NotReady."""
        deadline = self.clock.now() + self.within
        last_seen = "nothing yet"
        while True:
            try:
                outcome = probe()
            except self.transient as exc:
                last_seen = f"{type(exc).__name__}: {exc}"
            else:
                if outcome.done:
                    return outcome.value
                last_seen = outcome.seen or last_seen
            if self.clock.now() >= deadline:
                raise NotReady(awaited, self.within, last_seen)
            self.clock.sleep(min(self.interval, max(0.0, deadline - self.clock.now())))

    def until_true(self, awaited: str, check: Callable[[], bool]) -> None:
        """Poll a boolean check until it is true."""
        self.until(awaited, lambda: Probe(done=check()))

    async def until_async(self, awaited: str,
                          probe: Callable[[], Awaitable[Probe[T]]]) -> T | None:
        """The asyncio twin of :meth:`until` (uses the loop's clock)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.within
        last_seen = "nothing yet"
        while True:
            try:
                outcome = await probe()
            except self.transient as exc:
                last_seen = f"{type(exc).__name__}: {exc}"
            else:
                if outcome.done:
                    return outcome.value
                last_seen = outcome.seen or last_seen
            if loop.time() >= deadline:
                raise NotReady(awaited, self.within, last_seen)
            await asyncio.sleep(min(self.interval, max(0.0, deadline - loop.time())))
