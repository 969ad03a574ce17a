"""Deliberate cancellation (after N chunks / T seconds) and client timeouts."""

from __future__ import annotations

import pytest

from harness.load import CancelPolicy, CancelReason, ClientPolicy, ErrorType, Timeouts
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import DONE, FakeServer, content, send_one, spec


def cancel(**kwargs: float) -> ClientPolicy:
    return ClientPolicy(cancel=CancelPolicy(**kwargs))  # type: ignore[arg-type]  # int|float kwargs


@pytest.mark.asyncio
async def test_cancel_after_n_chunks_closes_the_stream(server: FakeServer,
                                                       clock: FakeClock) -> None:
    server.then(server.stream([(0.01, content(str(i))) for i in range(50)] + [(0.0, DONE)]))
    result = await send_one(server, spec(policy=cancel(after_chunks=5)), clock)
    script = server.scripts[0]
    assert result.cancelled is CancelReason.CHUNKS
    assert result.chunks == 5
    assert script.closed
    assert script.yielded == 5  # nothing read after the 5th chunk
    assert result.error is None and not result.ok
    assert result.e2e_s is None and result.ttft_s == pytest.approx(0.01)


@pytest.mark.asyncio
async def test_cancel_after_zero_chunks_drops_right_after_headers(
        server: FakeServer, clock: FakeClock) -> None:
    server.then(server.ok())
    result = await send_one(server, spec(policy=cancel(after_chunks=0)), clock)
    assert result.cancelled is CancelReason.CHUNKS
    assert result.chunks == 0
    assert server.scripts[0].yielded == 0


@pytest.mark.asyncio
async def test_cancel_after_seconds_abandons_a_stalled_stream(server: FakeServer,
                                                              clock: FakeClock) -> None:
    server.then(server.stream([(0.01, content("a"))], stall=True))
    result = await send_one(server, spec(policy=cancel(after_s=0.05)), clock)
    assert result.cancelled is CancelReason.SECONDS
    assert result.error is None
    assert server.scripts[0].closed


@pytest.mark.asyncio
async def test_stream_idle_timeout_is_a_timeout_error(server: FakeServer,
                                                      clock: FakeClock) -> None:
    server.then(server.stream([(0.01, content("a"))], stall=True))
    policy = ClientPolicy(timeouts=Timeouts(stream_idle=0.05))
    result = await send_one(server, spec(policy=policy), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.TIMEOUT
    assert "stream idle" in result.error.message
    assert result.chunks == 1
    assert server.scripts[0].closed


@pytest.mark.asyncio
async def test_read_timeout_before_first_bytes(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([], stall=True))
    policy = ClientPolicy(timeouts=Timeouts(read=0.05))
    result = await send_one(server, spec(policy=policy), clock)
    assert result.error is not None and result.error.kind is ErrorType.TIMEOUT
    assert result.status == 200 and result.chunks == 0


@pytest.mark.asyncio
async def test_cancel_deadline_wins_over_a_later_timeout(server: FakeServer,
                                                         clock: FakeClock) -> None:
    server.then(server.stream([(0.01, content("a"))], stall=True))
    policy = ClientPolicy(timeouts=Timeouts(stream_idle=30.0),
                          cancel=CancelPolicy(after_s=0.05))
    result = await send_one(server, spec(policy=policy), clock)
    assert result.cancelled is CancelReason.SECONDS
    assert result.error is None


@pytest.mark.asyncio
async def test_a_completion_the_stack_aborted_is_an_error_not_an_answer(
        server: FakeServer, clock: FakeClock) -> None:
    """vLLM aborting at shutdown (or rejecting while it drains) still answers 200 and ends
    with [DONE]; its finish_reason says the user got nothing complete."""
    server.then(server.stream([(0.01, content("a")), (0.01, content("", finish="abort")),
                               (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.status == 200 and not result.ok
    assert result.error is not None and result.error.kind is ErrorType.ABORTED
    assert result.finish_reason == "abort"


@pytest.mark.asyncio
async def test_a_completion_that_ran_to_its_length_is_an_answer(
        server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([(0.01, content("a")), (0.01, content("b", finish="length")),
                               (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.ok and result.finish_reason == "length"
