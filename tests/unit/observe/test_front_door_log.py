"""The front door's own log says which gateway each request was sent to, when it arrived
and ended, and whether its client left mid-response."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from harness.observe.front_door_log import FrontDoorLog

# Lines as the stack's HAProxy writes them (its log-format), one per request.
LOG = (Path(__file__).parents[2] / "fixtures" / "logs" / "frontdoor.log").read_text()


def local(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))


def test_each_request_is_known_by_the_server_it_was_sent_to() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.server_of == {"fd-b": "gateway-b", "fd-a": "gateway-a", "fd-none": "<NOSRV>",
                             "fd-c": "gateway-a", "fd-q": "gateway-b", "fd-shed1": "<NOSRV>",
                             "fd-shed2": "gateway-a", "fd-queued-out": "<NOSRV>",
                             "fd-timeout": "gateway-a", "fd-iso": "gateway-b"}


def test_requests_sent_elsewhere_or_never_logged_are_not_the_gateways() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.not_sent_to("gateway-a", ["fd-a", "fd-b", "fd-none", "fd-unknown", None]) == [
        "fd-b", "fd-none", "fd-unknown", None]


def test_a_request_ends_its_active_time_after_it_arrived() -> None:
    request = FrontDoorLog.parse(LOG).requests["fd-b"]

    assert request.arrived_at == local("2026-12-05 16:59:36") + 0.356
    assert round(request.ended_at - request.arrived_at, 3) == 2.315
    assert (request.status, request.termination) == (200, "----")


def test_the_front_door_s_own_time_leaves_out_the_client_sending_its_headers() -> None:
    requests = FrontDoorLog.parse(LOG).requests

    assert requests["fd-b"].client_sending_s == 1.127
    assert round(requests["fd-b"].handled_s, 3) == 1.188  # 2.315 active, 1.127 the client's
    # shed after its 1 s queue timeout
    assert round(requests["fd-queued-out"].handled_s, 3) == 1.001
    assert requests["fd-none"].client_sending_s == 0.0


def test_only_clients_that_left_mid_response_within_the_window_are_abandoned() -> None:
    log = FrontDoorLog.parse(LOG)
    start = local("2026-12-05 16:59:36")

    left = log.left_mid_response(start, start + 10)

    assert [r.request_id for r in left] == ["fd-c"]
    assert log.left_mid_response(start + 5, start + 10) == []


def test_the_wait_for_a_gateway_slot_is_known_only_for_requests_that_queued() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.requests["fd-q"].queued_s == 0.8
    assert log.requests["fd-b"].queued_s == 0.0
    assert log.requests["fd-shed1"].queued_s is None  # turned away before any queue
    assert (log.requests["fd-shed1"].status, log.requests["fd-shed1"].termination) == (
        429, "PR--")


def test_attempts_are_grouped_by_the_id_their_client_sent() -> None:
    log = FrontDoorLog.parse(LOG)
    start = local("2026-12-05 16:59:36")

    attempts = log.by_client_id(start, start + 10)

    assert [r.request_id for r in attempts["adf328f2-000059"]] == ["fd-shed1", "fd-shed2"]
    assert "" not in attempts  # requests sent without an id are nobody's attempts
    assert set(attempts) == {"adf328f2-000055", "adf328f2-000057", "adf328f2-000058",
                             "adf328f2-000059"}
    assert list(log.by_client_id(start + 8, start + 10)) == []


def test_only_requests_admission_control_turned_away_are_shed() -> None:
    log = FrontDoorLog.parse(LOG)

    # a 429 its rule denied is shed; a 503 for want of any gateway (SC) is not
    assert log.shed_ids() == frozenset({"fd-shed1", "fd-queued-out"})
    assert not log.requests["fd-none"].shed


def test_only_requests_the_front_door_gave_up_on_unanswered_are_named() -> None:
    log = FrontDoorLog.parse(LOG)
    ids = ["fd-a", "fd-b", "fd-timeout", "fd-queued-out", "fd-unknown", None]

    # a stream cut mid-answer (SD) was answered; a 504 at its timeout (sH) was not
    assert log.gave_up_unanswered("gateway-a", ids) == ["fd-timeout"]
    assert log.gave_up_unanswered("gateway-b", ids) == []


def utc(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(
        tzinfo=UTC).timestamp()


def test_the_front_door_says_when_it_marked_a_gateway_down_and_up() -> None:
    log = FrontDoorLog.parse(LOG)

    # its own stamp (format iso), to the microsecond; a check that failed is not a mark
    assert log.marked("gateway-a", "DOWN", since=utc("2026-12-05 16:59:48.0")) == utc(
        "2026-12-05 16:59:49.1025")
    assert log.marked("gateway-a", "UP", since=utc("2026-12-05 16:59:48.0")) == utc(
        "2026-12-05 17:00:05.25")
    assert log.marked("gateway-a", "DOWN", since=utc("2026-12-05 16:59:50.0")) is None
    assert log.marked("gateway-b", "DOWN", since=0.0) is None


def test_the_front_door_says_why_its_checks_of_a_gateway_failed() -> None:
    log = FrontDoorLog.parse(LOG)

    [check] = log.checks_failed("gateway-a", since=utc("2026-12-05 16:59:48.0"))
    assert check.at == utc("2026-12-05 16:59:48.1")
    assert check.reason == 'Layer4 connection problem, info: "Connection refused"'
    assert check.duration_s == 0.0
    assert check.describe(since=utc("2026-12-05 16:59:48.0")).startswith("+0.10s Layer4")
    assert log.checks_failed("gateway-a", since=utc("2026-12-05 16:59:48.2")) == []
    assert log.checks_failed("gateway-b", since=0.0) == []
