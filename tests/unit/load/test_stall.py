"""A timeout the client's own stall ate is the client's, not the stack's."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from harness.load import CancelReason, ClientPolicy, ErrorType, Timeouts
from harness.load.client import Requester
from harness.load.prompts import build_plan
from harness.load.result import RequestResult
from harness.load.stall import BEAT_S, STALL_MIN_S, LoopWatch, ate_the_budget
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import FakeServer, spec

READ_BUDGET_S = 0.3


class Ticks:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_late_beat_is_a_stall_and_scheduling_noise_is_not() -> None:
    watch = LoopWatch(now=Ticks())
    watch.note(due=100.0, woke=100.1)          # 0.1 s late: noise
    watch.note(due=101.0, woke=103.0)          # 2 s: a stall
    assert watch.stall_over(100.05, 110.0) is None
    assert watch.stall_over(102.0, 110.0) == pytest.approx(2.0)
    assert watch.stall_over(104.0, 110.0) is None


def test_a_timeout_that_fell_due_during_a_stall_is_the_clients() -> None:
    ticks = Ticks()
    watch = LoopWatch(now=ticks)
    watch.note(due=101.0, woke=103.5)          # stalled across the deadline (102)
    ticks.t = 103.6                            # the timer ran 1.6 s late
    assert ate_the_budget(watch, 100.0, budget=2.0) == pytest.approx(2.5)


def test_a_timeout_on_time_after_a_short_stall_is_the_stacks() -> None:
    ticks = Ticks()
    watch = LoopWatch(now=ticks)
    watch.note(due=100.5, woke=101.0)          # 0.5 s of a 2 s window, over by 101
    ticks.t = 102.0                            # the timer fired on time
    assert ate_the_budget(watch, 100.0, budget=2.0) is None


def test_a_stall_of_half_the_budget_leaves_the_stack_no_fair_window() -> None:
    ticks = Ticks()
    watch = LoopWatch(now=ticks)
    watch.note(due=100.2, woke=101.4)          # 1.2 s of a 2 s window
    ticks.t = 102.0
    assert ate_the_budget(watch, 100.0, budget=2.0) == pytest.approx(1.2)


def slow_client(server: FakeServer) -> None:
    """The request leaves, then the client's loop stops (as an unscheduled thread)."""
    reply = server.stream([], stall=True)

    def blocking(request: httpx.Request) -> httpx.Response:
        time.sleep(READ_BUDGET_S * 3)
        return reply(request)

    server.then(blocking)


async def send_watched(server: FakeServer, clock: FakeClock) -> RequestResult:
    watch = LoopWatch()
    beating = asyncio.create_task(watch.run())
    await asyncio.sleep(BEAT_S * 2)  # the watch has beaten
    load_spec = spec(policy=ClientPolicy(timeouts=Timeouts(read=READ_BUDGET_S)))
    try:
        async with server.client() as client:
            requester = Requester(client, load_spec, clock=clock, emit=lambda _: None,
                                  watch=watch)
            return await requester.send(build_plan(load_spec, 0, "rid-1", clock.now()))
    finally:
        beating.cancel()


@pytest.mark.asyncio
async def test_a_read_timeout_fired_by_the_clients_own_stall_is_not_a_stack_error(
        server: FakeServer, clock: FakeClock) -> None:
    slow_client(server)
    result = await send_watched(server, clock)
    assert result.cancelled is CancelReason.CLIENT_STALLED
    assert result.error is None and not result.ok
    assert result.client_stall_s is not None and result.client_stall_s >= STALL_MIN_S


@pytest.mark.asyncio
async def test_a_stack_that_stays_silent_past_the_budget_still_times_out(
        server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([], stall=True))
    result = await send_watched(server, clock)
    assert result.error is not None and result.error.kind is ErrorType.TIMEOUT
    assert result.cancelled is None and result.client_stall_s is None
