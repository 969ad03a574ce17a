"""Retries: jittered exponential backoff, Retry-After, idempotency key, attempt caps."""

from __future__ import annotations

import email.utils
import random

import httpx
import pytest

from harness.load import ClientPolicy, ErrorType, RetryPolicy, parse_retry_after
from harness.load.result import result_from_json
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import FakeServer, content, send_one, spec


def retrying(attempts: int = 3, base: float = 0.1, cap: float = 5.0,
             jitter: float = 1.0) -> ClientPolicy:
    return ClientPolicy(retries=RetryPolicy(max_attempts=attempts, base_backoff_s=base,
                                            max_backoff_s=cap, retry_after_jitter=jitter))


@pytest.mark.asyncio
async def test_5xx_then_success_retries_with_one_idempotency_key(server: FakeServer,
                                                                 clock: FakeClock) -> None:
    server.then(server.status(503), server.status(502), server.ok())
    result = await send_one(server, spec(policy=retrying()), clock, request_id="r-1")
    assert result.ok
    assert (result.retries, result.attempt) == (2, 3)
    keys = {r.headers["idempotency-key"] for r in server.requests}
    ids = {r.headers["x-request-id"] for r in server.requests}
    assert len(server.requests) == 3
    assert keys == {"idem-r-1"}
    assert ids == {"r-1"}
    assert len({r.content for r in server.requests}) == 1  # same body every attempt


@pytest.mark.asyncio
async def test_backoff_is_jittered_exponential_and_capped(server: FakeServer,
                                                          clock: FakeClock) -> None:
    server.then(server.status(500))
    result = await send_one(server, spec(policy=retrying(attempts=6, base=0.1, cap=0.3)),
                            clock)
    assert result.retries == 5 and result.attempt is None
    caps = [0.1, 0.2, 0.3, 0.3, 0.3]
    assert len(clock.slept) == 5
    assert all(0 <= s <= c for s, c in zip(clock.slept, caps, strict=True))
    assert len(set(clock.slept)) == 5  # jittered, not a fixed schedule


def test_backoff_draws_from_the_full_jitter_range() -> None:
    policy = RetryPolicy(max_attempts=5, base_backoff_s=1.0, max_backoff_s=8.0)
    rng = random.Random(1)
    waits = [policy.backoff(3, rng, None) for _ in range(2000)]
    assert max(waits) <= 4.0
    assert min(waits) < 0.1 and max(waits) > 3.9


@pytest.mark.asyncio
async def test_retry_after_is_a_jittered_floor(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(429, headers={"Retry-After": "2"}), server.ok())
    result = await send_one(server, spec(policy=retrying(base=0.01)), clock)
    assert result.ok and result.retries == 1
    assert len(clock.slept) == 1 and 2.0 <= clock.slept[0] <= 4.0
    assert result.retry_after_s is None  # the last attempt (a 200) sent none


@pytest.mark.asyncio
async def test_retry_after_without_jitter_is_exact(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(429, headers={"Retry-After": "2"}), server.ok())
    result = await send_one(server, spec(policy=retrying(base=0.01, jitter=0.0)), clock)
    assert result.ok and result.retries == 1
    assert clock.slept == [2.0]


@pytest.mark.parametrize("jitter", [1.0, 0.5, 3.0])
def test_retry_after_jitter_spreads_above_told(jitter: float) -> None:
    policy = RetryPolicy(max_attempts=3, retry_after_jitter=jitter)
    told = 2.0
    waits = [policy.backoff(1, random.Random(seed), told) for seed in range(200)]
    assert min(waits) >= told  # never sooner than told
    assert max(waits) <= told * (1 + jitter)
    assert max(waits) > told * (1 + jitter / 2)  # spread, not a herd at told
    assert min(waits) < told * (1 + jitter / 4)
    assert len(set(waits)) == 200


def test_zero_retry_after_jitter_waits_exactly_told() -> None:
    policy = RetryPolicy(max_attempts=3, retry_after_jitter=0.0)
    waits = {policy.backoff(1, random.Random(seed), 2.0) for seed in range(200)}
    assert waits == {2.0}


def test_zero_retry_after_jitter_draws_like_before() -> None:
    """j=0 takes nothing extra from the request's rng: later backoff draws are unchanged."""
    policy = RetryPolicy(max_attempts=5, base_backoff_s=1.0, max_backoff_s=8.0,
                         retry_after_jitter=0.0)
    rng, plain = random.Random(7), random.Random(7)
    policy.backoff(1, rng, 0.5)
    plain.uniform(0.0, 1.0)
    assert policy.backoff(2, rng, None) == policy.backoff(2, plain, None)


def test_retry_after_cap_applies_before_the_jitter() -> None:
    policy = RetryPolicy(max_attempts=3, retry_after_cap_s=5.0, retry_after_jitter=1.0)
    waits = [policy.backoff(1, random.Random(seed), 3600.0) for seed in range(200)]
    assert min(waits) >= 5.0 and max(waits) <= 10.0
    assert max(waits) > 7.5


def test_retry_after_jitter_is_still_at_least_the_backoff_draw() -> None:
    policy = RetryPolicy(max_attempts=5, base_backoff_s=8.0, max_backoff_s=8.0,
                         retry_after_jitter=1.0)
    waits = [policy.backoff(1, random.Random(seed), 0.5) for seed in range(200)]
    assert min(waits) >= 0.5 and max(waits) <= 8.0
    assert max(waits) > 1.0  # the exponential draw (up to 8 s) wins over told x 2


@pytest.mark.asyncio
async def test_a_429_records_its_retry_after(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(429, b'{"error": {"message": "busy", "code": 429}}',
                              headers={"Retry-After": "2"}))
    result = await send_one(server, spec(policy=retrying(attempts=2)), clock)
    assert len(server.requests) == 2
    assert result.status == 429 and not result.ok
    assert result.retry_after_s == 2.0
    assert result_from_json(result.to_json()) == result


@pytest.mark.asyncio
async def test_an_error_without_retry_after_records_none(server: FakeServer,
                                                         clock: FakeClock) -> None:
    server.then(server.status(503))
    result = await send_one(server, spec(), clock)
    assert result.status == 503 and result.retry_after_s is None


def test_retry_after_http_date_and_garbage() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-5", now) == 0.0


@pytest.mark.asyncio
async def test_retry_after_is_capped(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(503, headers={"Retry-After": "3600"}), server.ok())
    await send_one(server, spec(policy=retrying(jitter=0.0)), clock)
    assert clock.slept == [30.0]


@pytest.mark.asyncio
async def test_a_capped_retry_after_is_jittered_from_the_cap(server: FakeServer,
                                                             clock: FakeClock) -> None:
    server.then(server.status(503, headers={"Retry-After": "3600"}), server.ok())
    await send_one(server, spec(policy=retrying()), clock)
    assert len(clock.slept) == 1 and 30.0 <= clock.slept[0] <= 60.0


@pytest.mark.asyncio
async def test_4xx_other_than_429_is_not_retried(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(400, b'{"error": {"message": "bad", "code": 400}}'))
    result = await send_one(server, spec(policy=retrying()), clock)
    assert len(server.requests) == 1
    assert result.retries == 0
    assert clock.slept == []


@pytest.mark.asyncio
async def test_connect_errors_and_timeouts_are_retried(server: FakeServer,
                                                       clock: FakeClock) -> None:
    server.then(server.raises(lambda r: httpx.ConnectError("refused", request=r)),
                server.raises(lambda r: httpx.ReadTimeout("slow", request=r)), server.ok())
    result = await send_one(server, spec(policy=retrying()), clock)
    assert result.ok and result.attempt == 3


@pytest.mark.asyncio
async def test_cap_reached_reports_the_last_error(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.raises(lambda r: httpx.ConnectError("refused", request=r)))
    result = await send_one(server, spec(policy=retrying(attempts=2)), clock)
    assert len(server.requests) == 2
    assert result.error is not None and result.error.kind is ErrorType.CONNECT
    assert (result.retries, result.attempt) == (1, None)


@pytest.mark.asyncio
async def test_half_streamed_answer_is_never_replayed(server: FakeServer,
                                                      clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a"))],
                              fail=httpx.ReadError("connection reset")), server.ok())
    result = await send_one(server, spec(policy=retrying()), clock)
    assert len(server.requests) == 1
    assert result.error is not None and result.error.kind is ErrorType.STREAM_CUT


@pytest.mark.asyncio
async def test_ttft_of_a_retried_request_counts_from_the_first_send(
        server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(503, headers={"Retry-After": "1"}),
                server.stream([(0.2, content("a")), (0.0, b"data: [DONE]\n\n")]))
    result = await send_one(server, spec(policy=retrying()), clock)
    assert len(clock.slept) == 1 and clock.slept[0] >= 1.0
    assert result.ttft_s == pytest.approx(clock.slept[0] + 0.2)
