"""The overload drills' evidence from the front door's log: capacity as the answers it
served per second, and how long each client waited after a 429 before trying again."""

from __future__ import annotations

from drills.test_overload import peak_arrivals_per_s, retry_waits, served_per_s
from harness.observe.front_door_log import FrontDoorRequest


def request(rid: str, status: int, arrived: float, ended: float,
            client_id: str = "") -> FrontDoorRequest:
    return FrontDoorRequest(request_id=rid, server="gateway-a", status=status,
                            termination="----", arrived_at=arrived, ended_at=ended,
                            client_id=client_id)


def test_capacity_counts_only_answers_served_within_the_window() -> None:
    logged = [request("a", 200, 0.0, 1.0), request("b", 200, 0.5, 3.0),
              request("c", 429, 1.0, 1.0), request("d", 200, 9.0, 11.0),
              request("e", 503, 2.0, 3.0)]

    assert served_per_s(logged, 0.5, 10.5) == 0.2  # a and b of the 200s; not d, not the errors


def test_the_surge_is_judged_on_its_busiest_stretch_at_the_front_door() -> None:
    # 10 arrivals in the first 2 s, then a straggling tail: a front door taking the rest in
    # late does not dilute what it saw arrive at once
    arrivals = [i * 0.2 for i in range(10)] + [10.0, 20.0, 30.0]

    assert peak_arrivals_per_s(arrivals, window_s=2.0) == 5.0
    assert peak_arrivals_per_s(arrivals, window_s=10.0) == 1.1  # 0.0 .. 10.0: 11 arrivals
    assert peak_arrivals_per_s([], window_s=5.0) == 0.0
    assert peak_arrivals_per_s([3.0], window_s=5.0) == 0.2


def test_a_retry_is_timed_from_the_end_of_the_429_to_the_next_arrival() -> None:
    attempts = {"u1": [request("1", 429, 0.0, 0.01, "u1"), request("2", 429, 2.5, 2.51, "u1"),
                       request("3", 200, 5.0, 6.0, "u1")],
                "u2": [request("4", 200, 0.0, 1.0, "u2")]}

    waits = [(key, round(wait, 3)) for key, wait in retry_waits(attempts)]

    assert waits == [("u1", 2.49), ("u1", 2.49)]


def test_an_attempt_after_a_success_is_no_retry() -> None:
    attempts = {"u": [request("1", 200, 0.0, 1.0, "u"), request("2", 429, 3.0, 3.0, "u")]}

    assert retry_waits(attempts) == []
