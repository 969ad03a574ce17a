"""harness.waits: one poll loop with a deadline, on a fake clock (no real time passes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from harness.errors import NotReady
from harness.waits import Probe, Wait
from tests.fakes import FakeClock


def scripted(*outcomes: Probe[str] | BaseException) -> Callable[[], Probe[str]]:
    """A probe answering ``outcomes`` in turn (the last repeats); exceptions are raised."""
    it: Iterator[Probe[str] | BaseException] = iter(outcomes)

    def probe() -> Probe[str]:
        outcome = next(it, outcomes[-1])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome
    return probe


def counting(check: Callable[[int], bool]) -> tuple[Callable[[], bool], list[int]]:
    calls: list[int] = []

    def probe() -> bool:
        calls.append(len(calls))
        return check(len(calls))
    return probe, calls


def test_returns_the_value_of_the_first_done_probe(clock: FakeClock) -> None:
    probe = scripted(Probe(False, seen="1 left"), Probe(True, "ready"), Probe(True, "later"))
    assert Wait(within=5, interval=1, clock=clock).until("x", probe) == "ready"
    assert clock.t == 1001.0  # one interval slept between the two polls


def test_a_done_first_poll_does_not_sleep(clock: FakeClock) -> None:
    assert Wait(within=5, clock=clock).until("x", scripted(Probe(True, "now"))) == "now"
    assert clock.t == 1000.0


def test_past_the_deadline_it_raises_naming_what_and_the_last_thing_seen(
        clock: FakeClock) -> None:
    probe = scripted(Probe(False, seen="3 running"), Probe(False, seen="2 running"))
    with pytest.raises(NotReady) as caught:
        Wait(within=2, interval=0.5, clock=clock).until("node1 idle", probe)
    assert caught.value.awaited == "node1 idle"
    assert caught.value.within == 2
    assert caught.value.last_seen == "2 running"
    assert "timed out after 2.0s waiting for node1 idle" in str(caught.value)
    assert clock.t == 1002.0  # never sleeps past the deadline


def test_an_empty_seen_keeps_the_last_description(clock: FakeClock) -> None:
    probe = scripted(Probe(False, seen="kv=0.4"), Probe(False))
    with pytest.raises(NotReady) as caught:
        Wait(within=1, interval=0.5, clock=clock).until("kv released", probe)
    assert caught.value.last_seen == "kv=0.4"


def test_transient_errors_mean_not_yet_and_are_reported(clock: FakeClock) -> None:
    probe = scripted(ConnectionRefusedError("refused"), Probe(True, "up"))
    assert Wait(within=5, interval=1, clock=clock).until("up", probe) == "up"
    never = scripted(ConnectionRefusedError("refused"))
    with pytest.raises(NotReady) as caught:
        Wait(within=1, interval=1, clock=clock).until("up", never)
    assert caught.value.last_seen == "ConnectionRefusedError: refused"


def test_other_errors_are_not_swallowed(clock: FakeClock) -> None:
    with pytest.raises(KeyError):
        Wait(within=5, clock=clock).until("x", scripted(KeyError("bug")))
    assert clock.t == 1000.0


def test_the_transient_set_is_the_callers(clock: FakeClock) -> None:
    probe = scripted(KeyError("not yet"), Probe(True, "ok"))
    wait = Wait(within=5, interval=1, transient=(KeyError,), clock=clock)
    assert wait.until("x", probe) == "ok"
    with pytest.raises(ConnectionRefusedError):
        wait.until("x", scripted(ConnectionRefusedError("refused")))


def test_polls_every_interval_until_the_deadline(clock: FakeClock) -> None:
    check, calls = counting(lambda n: False)
    with pytest.raises(NotReady):
        Wait(within=1.0, interval=0.25, clock=clock).until_true("never", check)
    assert len(calls) == 5  # at 0, 0.25, 0.5, 0.75 and 1.0 s


def test_until_true_returns_once_the_check_holds(clock: FakeClock) -> None:
    check, calls = counting(lambda n: n == 3)
    Wait(within=10, interval=2, clock=clock).until_true("third time", check)
    assert (len(calls), clock.t) == (3, 1004.0)


def test_the_async_twin_returns_the_value_and_treats_errors_alike() -> None:
    outcomes = scripted(OSError("not yet"), Probe(False, seen="warming"), Probe(True, "hot"))

    async def probe() -> Probe[str]:
        return outcomes()

    waiting = Wait(within=5, interval=0.001).until_async("hot", probe)
    assert asyncio.run(waiting) == "hot"


def test_the_async_twin_raises_with_the_last_thing_seen() -> None:
    async def probe() -> Probe[str]:
        return Probe(False, seen="still cold")

    waiting = Wait(within=0.0).until_async("hot", probe)
    with pytest.raises(NotReady) as caught:
        asyncio.run(waiting)
    assert caught.value.last_seen == "still cold"
