from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from harness.errors import DrillFailed, NotReady, ProbeError
from harness.observe import (
    PrometheusClient,
    PrometheusSteadyState,
    SteadyState,
    Tolerance,
    measure_recovery,
    time_to_recover,
)
from harness.waits import Probe
from tests.fakes import FakeClock

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
    reverted = clock.wall()
    bad = SteadyState(0.5, 2.0)
    source = Script([bad] * 8 + [SteadyState(0.0, 0.12)])
    result = measure_recovery(source, baseline=BASELINE, reverted_at=reverted, within=30,
                              hold=1.0, interval=0.25, clock=clock)
    assert result.seconds == pytest.approx(8 * 0.25)
    assert result.reached.ttft_p95_s == 0.12


def test_a_relapse_restarts_the_hold(clock: FakeClock) -> None:
    good, bad = SteadyState(0.0, 0.1), SteadyState(0.3, 0.1)
    source = Script([good, good, bad, good])
    result = measure_recovery(source, baseline=BASELINE, reverted_at=clock.wall(), within=30,
                              hold=1.0, interval=0.25, clock=clock)
    assert result.seconds == pytest.approx(0.75)


def test_no_recovery_fails_with_last_reading(clock: FakeClock) -> None:
    source = Script([SteadyState(0.2, 3.0)])
    with pytest.raises(DrillFailed) as info:
        measure_recovery(source, baseline=BASELINE, reverted_at=clock.wall(), within=3,
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


def test_time_to_recover_counts_from_the_revert_not_from_the_call(clock: FakeClock) -> None:
    reverted = clock.wall() - 5.0  # the fault was reverted 5 s before the wait began
    readings = iter([False, False, True])
    def check() -> Probe[None]:
        return Probe(done=next(readings))

    recovered = time_to_recover(check, since=reverted, within=30, interval=0.25, clock=clock)
    assert recovered.seconds == pytest.approx(5.0 + 2 * 0.25)


def test_time_to_recover_treats_transient_errors_as_not_yet(clock: FakeClock) -> None:
    calls: list[int] = []

    def check() -> Probe[str]:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection refused")
        return Probe(done=True, value="up")

    recovered = time_to_recover(check, since=clock.wall(), within=30, interval=1.0,
                                transient=(OSError,), clock=clock)
    assert recovered.seconds == pytest.approx(2.0)
    assert recovered.reached == "up"


def test_time_to_recover_gives_up_with_what_it_last_saw(clock: FakeClock) -> None:
    with pytest.raises(NotReady) as info:
        time_to_recover(lambda: Probe(done=False, seen="gateway-a DOWN"), since=clock.wall(),
                        within=2, awaited="front door takes gateway-a back", clock=clock)
    assert "gateway-a DOWN" in str(info.value)


def test_an_error_rate_with_no_request_counted_is_unknown_not_zero() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "success", "data": {
            "resultType": "vector", "result": []}})

    prom = PrometheusClient("http://p", httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(ProbeError, match="no requests in the window") as info:
        PrometheusSteadyState(prom, window_s=5).steady_state()
    assert info.value.url == "http://p"
