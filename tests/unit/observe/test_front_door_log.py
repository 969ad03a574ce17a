"""The front door's own log says which gateway each request was sent to, when it arrived
and ended, and whether its client left mid-response."""

from __future__ import annotations

import time
from pathlib import Path

from harness.observe.front_door_log import FrontDoorLog

# Lines as the stack's HAProxy writes them (its log-format), one per request.
LOG = (Path(__file__).parents[2] / "fixtures" / "logs" / "frontdoor.log").read_text()


def local(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def test_each_request_is_known_by_the_server_it_was_sent_to() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.server_of == {"fd-b": "gateway-b", "fd-a": "gateway-a", "fd-none": "<NOSRV>",
                             "fd-c": "gateway-a"}


def test_requests_sent_elsewhere_or_never_logged_are_not_the_gateways() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.not_sent_to("gateway-a", ["fd-a", "fd-b", "fd-none", "fd-unknown", None]) == [
        "fd-b", "fd-none", "fd-unknown", None]


def test_a_request_ends_its_active_time_after_it_arrived() -> None:
    request = FrontDoorLog.parse(LOG).requests["fd-b"]

    assert request.arrived_at == local("2026-12-05 16:59:36") + 0.356
    assert round(request.ended_at - request.arrived_at, 3) == 2.315
    assert (request.status, request.termination) == (200, "----")


def test_only_clients_that_left_mid_response_within_the_window_are_abandoned() -> None:
    log = FrontDoorLog.parse(LOG)
    start = local("2026-12-05 16:59:36")

    left = log.left_mid_response(start, start + 10)

    assert [r.request_id for r in left] == ["fd-c"]
    assert log.left_mid_response(start + 5, start + 10) == []
