"""Abort conditions: a breach aborts once it has held ``for_s`` without a break; alerts the
plan expects never abort; the reading comes from Prometheus' answers."""

from __future__ import annotations

import httpx

from harness.clients.prometheus import PrometheusClient
from harness.gameday.abort import (
    CRITICAL_FIRING,
    ERROR_RATIO,
    AbortWatch,
    Reading,
    read_conditions,
)
from harness.gameday.plan import AbortConditions
from tests.fakes import FakeClock

BOUNDS = AbortConditions(error_ratio=0.5, ttft_p95_s=10.0, for_s=30.0)
CALM = Reading(error_ratio=0.01, ttft_p95_s=0.2, critical_alerts=frozenset())
ERRORS = Reading(error_ratio=0.8, ttft_p95_s=0.2, critical_alerts=frozenset())


def watch(clock: FakeClock, expected: frozenset[str] = frozenset()) -> AbortWatch:
    return AbortWatch(BOUNDS, expected, clock)


def test_a_breach_aborts_only_once_it_has_lasted() -> None:
    clock = FakeClock()
    w = watch(clock)
    assert w.observe(ERRORS) is None
    clock.advance(29)
    assert w.observe(ERRORS) is None
    clock.advance(1)
    assert w.observe(ERRORS) == "client error ratio: 0.80 > 0.5 for 30s (for_s 30)"


def test_a_break_in_the_breach_starts_it_over() -> None:
    clock = FakeClock()
    w = watch(clock)
    w.observe(ERRORS)
    clock.advance(20)
    assert w.observe(CALM) is None
    clock.advance(20)
    assert w.observe(ERRORS) is None
    clock.advance(20)
    assert w.observe(ERRORS) is None  # 20 s since it came back


def test_no_reading_neither_starts_nor_breaks_a_breach() -> None:
    clock = FakeClock()
    w = watch(clock)
    w.observe(ERRORS)
    clock.advance(40)
    assert w.observe(None) is None
    assert w.observe(ERRORS) is not None


def test_only_critical_alerts_no_planned_drill_expects_abort() -> None:
    clock = FakeClock()
    w = watch(clock, expected=frozenset({"NodeDown"}))
    firing = Reading(None, None, frozenset({"NodeDown"}))
    assert w.breaches(firing) == {}
    both = Reading(None, None, frozenset({"NodeDown", "FrontDoorDown"}))
    assert w.breaches(both) == {"unexpected critical alert": "FrontDoorDown"}


def test_slow_first_tokens_abort_too() -> None:
    assert watch(FakeClock()).breaches(Reading(0.0, 12.5, frozenset())) == {
        "client TTFT p95": "12.50s > 10.0s"}


def test_the_reading_is_what_prometheus_answers() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        if query == ERROR_RATIO:
            result = [{"metric": {}, "value": [1.0, "0.25"]}]
        elif query == CRITICAL_FIRING:
            result = [{"metric": {"alertname": "NodeDown"}, "value": [1.0, "1"]}]
        else:  # TTFT p95 of no requests: NaN, which is no reading
            result = [{"metric": {}, "value": [1.0, "NaN"]}]
        return httpx.Response(200, json={"status": "success",
                                         "data": {"resultType": "vector", "result": result}})
    client = PrometheusClient("http://prom", httpx.Client(transport=httpx.MockTransport(answer)))
    assert read_conditions(client) == Reading(0.25, None, frozenset({"NodeDown"}))
