"""Each stream the front door saw abandoned is paired with the node that took it: how soon
after the node took it the client left, and whether (and how soon) the node aborted it."""

from __future__ import annotations

import time

import pytest

from harness.observe.abandoned import abandoned_streams
from harness.observe.front_door_log import FrontDoorLog
from harness.observe.request_log import RequestLog

ENGINE = "vllm.v1.engine.async_llm"


def front_door_line(request_id: str, arrived: str, active_ms: int, state: str = "CD--") -> str:
    return (f"127.0.0.1:1 [05/Dec/2026:{arrived}] frontdoor gateways/gateway-a "
            f"1/0/0/38/{active_ms} 200 3469 {state} 1/1/1/1/0 0/0 {{}} "
            f'"POST /v1/completions HTTP/1.1" id={request_id}')


def node_line(stamp: str, event: str, request_id: str) -> str:
    return f"INFO 2026-12-05 {stamp} {ENGINE} {event} cmpl-{request_id}-0-ab12cd34."


def local(stamp: str) -> float:
    seconds, millis = stamp.split(".")
    return time.mktime(time.strptime(f"2026-12-05 {seconds}", "%Y-%m-%d %H:%M:%S")) \
        + int(millis) / 1000


FRONT_DOOR = FrontDoorLog.parse("\n".join([
    front_door_line("fd-young", "20:00:00.000", 300),      # left at 20:00:00.300
    front_door_line("fd-done", "20:00:00.000", 4000),      # left at 20:00:04.000
    front_door_line("fd-nowhere", "20:00:00.000", 300),
    front_door_line("fd-whole", "20:00:00.000", 900, state="----"),
]))
NODE1 = RequestLog.parse("node1", "\n".join([
    node_line("20:00:00,100", "Added request", "fd-young"),
    node_line("20:00:00,350", "Aborted request(s)", "fd-young"),
    node_line("20:00:00,200", "Added request", "fd-done"),
    node_line("20:00:00,100", "Added request", "fd-whole"),
]))
WINDOW = (local("19:59:00.000"), local("20:01:00.000"))


def test_a_stream_left_soon_after_its_node_took_it_is_young_and_its_abort_is_timed() -> None:
    streams = abandoned_streams(FRONT_DOOR.left_mid_response(*WINDOW), [NODE1])

    by_id = {s.request_id: s for s in streams.streams}
    young = by_id["fd-young"]
    assert (young.node, young.aborted) == ("node1", True)
    assert young.age_s == pytest.approx(0.2)
    assert young.abort_lag_s == pytest.approx(0.05)
    assert by_id["fd-done"].age_s == pytest.approx(3.8)
    assert not by_id["fd-done"].aborted
    assert [s.request_id for s in streams.young(1.0)] == ["fd-young"]
    assert streams.abort_lags() == [pytest.approx(0.05)]


def test_streams_no_node_took_are_counted_apart_and_whole_answers_are_not_abandoned() -> None:
    streams = abandoned_streams(FRONT_DOOR.left_mid_response(*WINDOW), [NODE1])

    assert streams.untraced == 1
    assert {s.request_id for s in streams.streams} == {"fd-young", "fd-done"}


def test_a_retried_stream_is_the_last_node_that_took_it() -> None:
    node2 = RequestLog.parse("node2", node_line("20:00:00,250", "Added request", "fd-young"))

    streams = abandoned_streams(FRONT_DOOR.left_mid_response(*WINDOW), [NODE1, node2])

    young = next(s for s in streams.streams if s.request_id == "fd-young")
    assert (young.node, young.aborted) == ("node2", False)
