"""The front door's own log says which gateway each request was sent to."""

from __future__ import annotations

from pathlib import Path

from harness.observe.front_door_log import FrontDoorLog

# Lines as the stack's HAProxy writes them (its log-format), one per request.
LOG = (Path(__file__).parents[2] / "fixtures" / "logs" / "frontdoor.log").read_text()


def test_each_request_is_known_by_the_server_it_was_sent_to() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.server_of == {"fd-b": "gateway-b", "fd-a": "gateway-a", "fd-none": "<NOSRV>"}


def test_requests_sent_elsewhere_or_never_logged_are_not_the_gateways() -> None:
    log = FrontDoorLog.parse(LOG)

    assert log.not_sent_to("gateway-a", ["fd-a", "fd-b", "fd-none", "fd-unknown", None]) == [
        "fd-b", "fd-none", "fd-unknown", None]
