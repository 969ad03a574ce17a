"""When the fault proxy closed a proxy's listener, by its own log (Toxiproxy's lines)."""

from __future__ import annotations

from datetime import UTC, datetime

from harness.observe.fault_proxy_log import parse_events, terminated_at

LOG = """listening on http://127.0.0.1:18474
{"time": "2026-12-07T07:58:02.100000+00:00", "name": "gateway-a", "message": "Started proxy"}
{"time": "2026-12-07T07:58:03.250000+00:00", "name": "gateway-a", "message": "Terminated proxy"}
{"level":"info","name":"node1","time":"2026-12-07T07:58:04Z","message":"Terminated proxy"}
{"not": "an event"}
{truncated
"""


def utc(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def test_the_fault_proxy_says_when_it_closed_a_listener() -> None:
    since = utc("2026-12-07 07:58:00.0")

    assert terminated_at(LOG, "gateway-a", since) == utc("2026-12-07 07:58:03.25")
    assert terminated_at(LOG, "node1", since) == utc("2026-12-07 07:58:04.0")  # real Toxiproxy
    assert terminated_at(LOG, "gateway-a", since=utc("2026-12-07 07:58:03.3")) is None
    assert terminated_at(LOG, "gateway-b", since) is None


def test_lines_that_are_not_its_events_are_skipped() -> None:
    assert [e.message for e in parse_events(LOG)] == [
        "Started proxy", "Terminated proxy", "Terminated proxy"]
