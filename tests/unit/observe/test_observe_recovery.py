from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from obsfakes import FakeClock

from harness.errors import DrillFailed
from harness.observe import (
    PrometheusClient,
    PrometheusSteadyState,
    SteadyState,
    Tolerance,
    measure_recovery,
)

BASELINE = SteadyState(error_rate=0.0, ttft_p95_s=0.1)


@dataclass
class Script:
    """Returns each reading ``repeat`` times, then the next; the last one sticks."""

    readings: list[SteadyState]
    repeat: int = 1
    calls: int = 0

    def steady_state(self) -> SteadyState:
        index = min(self.calls // self.repeat, len(self.readings) - 1)
        self.calls += 1
        return self.readings[index]


def test_recovery_counts_from_revert_to_start_of_steady_hold(clock: FakeClock) -> None:
    reverted = clock.now()
    bad = SteadyState(0.5, 2.0)
    source = Script([bad] * 8 + [SteadyState(0.0, 0.12)])
    result = measure_recovery(source, baseline=BASELINE, reverted_at=reverted, within=30,
                              hold=1.0, interval=0.25, clock=clock)
    assert result.seconds == pytest.approx(8 * 0.25)
    assert result.reached.ttft_p95_s == 0.12


def test_a_relapse_restarts_the_hold(clock: FakeClock) -> None:
    good, bad = SteadyState(0.0, 0.1), SteadyState(0.3, 0.1)
    source = Script([good, good, bad, good])
    result = measure_recovery(source, baseline=BASELINE, reverted_at=clock.now(), within=30,
                              hold=1.0, interval=0.25, clock=clock)
    assert result.seconds == pytest.approx(0.75)


def test_no_recovery_fails_with_last_reading(clock: FakeClock) -> None:
    source = Script([SteadyState(0.2, 3.0)])
    with pytest.raises(DrillFailed) as info:
        measure_recovery(source, baseline=BASELINE, reverted_at=clock.now(), within=3,
                         clock=clock)
    assert "error_rate=0.200 ttft_p95=3.000s" in str(info.value)


@pytest.mark.parametrize(("now", "holds"), [
    (SteadyState(0.005, 0.1), True),
    (SteadyState(0.02, 0.1), False),
    (SteadyState(0.0, 0.17), True),
    (SteadyState(0.0, 0.2), False),
    (SteadyState(0.0, None), False),
])
def test_tolerance(now: SteadyState, holds: bool) -> None:
    assert Tolerance().holds(now, BASELINE) is holds


def test_prometheus_steady_state_queries_client_metrics() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        queries.append(query)
        value = "0.25" if query.startswith("histogram_quantile") else "0.02"
        return httpx.Response(200, json={"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {}, "value": [1, value]}]}})

    prom = PrometheusClient("http://p", httpx.Client(transport=httpx.MockTransport(handler)))
    state = PrometheusSteadyState(prom, window_s=5).steady_state()
    assert state == SteadyState(error_rate=0.02, ttft_p95_s=0.25)
    assert 'llmdrill_client_errors_total{job="loadgen"}[5s]' in queries[0]
    assert "llmdrill_client_ttft_seconds_bucket" in queries[1]
