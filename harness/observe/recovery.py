"""Recovery time: from a fault's revert to steady state, against the pre-fault baseline.

Steady state is what users feel: the client error rate and the client p95 TTFT
(``llmdrill_client_*`` from the load generator). Capture a baseline before the
fault with :meth:`SteadyStateSource.steady_state`, revert the fault, note
``reverted_at`` on the same monotonic clock, then :func:`measure_recovery`.

With :class:`PrometheusSteadyState` each reading is a ``rate`` over ``window_s``:
the measured recovery includes up to one window of lag (errors before the
revert still count). Keep the window short (it defaults to the rules' window
floor of 10 s), or pass a source fed by the load generator's own samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from harness.errors import DrillFailed, NotReady
from harness.observe.prom import PrometheusClient
from harness.waits import Clock, MonotonicClock, Probe, Wait


@dataclass(frozen=True)
class SteadyState:
    """Client error rate (0-1) and client p95 TTFT (None when nothing was served)."""

    error_rate: float
    ttft_p95_s: float | None

    def describe(self) -> str:
        ttft = "n/a" if self.ttft_p95_s is None else f"{self.ttft_p95_s:.3f}s"
        return f"error_rate={self.error_rate:.3f} ttft_p95={ttft}"


class SteadyStateSource(Protocol):
    def steady_state(self) -> SteadyState: ...


@dataclass(frozen=True)
class Tolerance:
    """How close to baseline counts as recovered."""

    error_rate_abs: float = 0.01
    ttft_ratio: float = 0.25
    ttft_abs_s: float = 0.05

    def holds(self, now: SteadyState, baseline: SteadyState) -> bool:
        if now.error_rate > baseline.error_rate + self.error_rate_abs:
            return False
        if baseline.ttft_p95_s is None:
            return True
        if now.ttft_p95_s is None:
            return False
        limit = baseline.ttft_p95_s * (1 + self.ttft_ratio) + self.ttft_abs_s
        return now.ttft_p95_s <= limit


@dataclass(frozen=True)
class Recovery:
    seconds: float
    baseline: SteadyState
    reached: SteadyState


@dataclass(frozen=True)
class PrometheusSteadyState:
    """Steady state from the load generator's client metrics, through Prometheus."""

    prometheus: PrometheusClient
    window_s: int = 10
    job: str = "loadgen"

    def steady_state(self) -> SteadyState:
        w, job = f"{self.window_s}s", self.job
        errors = (f'(sum(rate(llmdrill_client_errors_total{{job="{job}"}}[{w}])) or vector(0))'
                  f' / sum(rate(llmdrill_client_requests_total{{job="{job}"}}[{w}]))')
        ttft = (f'histogram_quantile(0.95, sum by (le) '
                f'(rate(llmdrill_client_ttft_seconds_bucket{{job="{job}"}}[{w}])))')
        return SteadyState(error_rate=self._scalar(errors) or 0.0,
                           ttft_p95_s=self._scalar(ttft))

    def _scalar(self, promql: str) -> float | None:
        values = [s.value for s in self.prometheus.query(promql) if not math.isnan(s.value)]
        return values[0] if values else None


def measure_recovery(source: SteadyStateSource, *, baseline: SteadyState, reverted_at: float,
                     within: float, tolerance: Tolerance | None = None, hold: float = 2.0,
                     interval: float = 0.25, clock: Clock | None = None) -> Recovery:
    """Seconds from ``reverted_at`` until steady state held for ``hold`` seconds.

    ``reverted_at`` is a reading of ``clock`` (by default ``time.monotonic``).
    Raises :class:`DrillFailed` with the last reading if it does not recover
    ``within`` seconds of the call.
    """
    clock = clock or MonotonicClock()
    tolerance = tolerance or Tolerance()
    first_ok: list[float] = []

    def probe() -> Probe[Recovery]:
        now, reading = clock.now(), source.steady_state()
        if not tolerance.holds(reading, baseline):
            first_ok.clear()
            return Probe(done=False, seen=f"{reading.describe()} vs baseline {baseline.describe()}")
        first_ok[:] = first_ok or [now]
        if now - first_ok[0] < hold:
            return Probe(done=False, seen=f"within tolerance for {now - first_ok[0]:.1f}s")
        return Probe(done=True, value=Recovery(max(0.0, first_ok[0] - reverted_at),
                                               baseline, reading))

    wait = Wait(within=within, interval=interval, transient=(), clock=clock)
    try:
        result = wait.until("steady state back within tolerance of baseline", probe)
    except NotReady as exc:
        raise DrillFailed("recovery", str(exc)) from exc
    assert result is not None
    return result
