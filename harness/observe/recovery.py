"""Recovery time: from a fault's revert to the first moment steady state holds again.

:func:`time_to_recover` is the one measurement every drill's ``recovery_s`` goes
through, whatever its steady-state check reads from the stack (a front-door backend
UP, every gateway seeing a node healthy, KV released, an alert resolved).
:func:`measure_recovery` applies it to the client's view against a pre-fault baseline.

For :func:`measure_recovery`, steady state is what users feel: the client error
rate and the client p95 TTFT (``llmdrill_client_*`` from the load generator).
Capture a baseline before the fault with :meth:`SteadyStateSource.steady_state`,
revert the fault, note ``reverted_at`` (wall clock), then :func:`measure_recovery`.

With :class:`PrometheusSteadyState` each reading is a ``rate`` over ``window_s``:
the measured recovery includes up to one window of lag (errors before the
revert still count). Keep the window short (it defaults to the rules' window
floor of 10 s), or pass a source fed by the load generator's own samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from harness.clients.prometheus import PrometheusClient
from harness.clock import Clock, SystemClock
from harness.errors import DrillFailed, NotReady, ProbeError
from harness.waits import Probe, Wait

T = TypeVar("T")


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
        error_rate = self._scalar(errors)
        if error_rate is None:  # no request counted: an unknown error rate, not zero
            raise ProbeError(self.prometheus.base_url, errors, "no requests in the window")
        return SteadyState(error_rate=error_rate, ttft_p95_s=self._scalar(ttft))

    def _scalar(self, promql: str) -> float | None:
        values = [s.value for s in self.prometheus.query(promql) if not math.isnan(s.value)]
        return values[0] if values else None


@dataclass(frozen=True)
class Recovered(Generic[T]):
    """How long a recovery took, and the value the check held with."""

    seconds: float
    reached: T | None


def time_to_recover(check: Callable[[], Probe[T]], *, since: float, within: float,
                    awaited: str = "steady state", hold: float = 0.0, interval: float = 0.25,
                    transient: tuple[type[BaseException], ...] = (),
                    clock: Clock | None = None) -> Recovered[T]:
    """The project's one measurement of recovery: seconds from ``since`` to the first
    poll on which ``check`` held (and kept holding for ``hold`` seconds).

    ``since`` is the fault's revert (or the fault's end), a wall-clock timestamp as
    ``DrillRun.phase`` and the faults' ``observed.reverted_at`` give it; the moment a
    check held is read from ``clock.wall()`` just before that poll, the hold is timed on
    ``clock.now()``. A relapse during the hold starts over. ``within`` counts from the
    call. Raises :class:`NotReady` with the last thing the check saw.
    """
    clock = clock or SystemClock()
    held_from: list[tuple[float, float]] = []  # (now, wall) of the first poll that held

    def probe() -> Probe[Recovered[T]]:
        now, wall = clock.now(), clock.wall()
        outcome = check()
        if not outcome.done:
            held_from.clear()
            return Probe(done=False, seen=outcome.seen)
        held_from[:] = held_from or [(now, wall)]
        if now - held_from[0][0] < hold:
            return Probe(done=False, seen=f"held for {now - held_from[0][0]:.1f}s")
        return Probe(done=True, value=Recovered(max(0.0, held_from[0][1] - since),
                                                outcome.value))

    result = Wait(within=within, interval=interval, transient=transient, clock=clock).until(
        awaited, probe)
    assert result is not None
    return result


def measure_recovery(source: SteadyStateSource, *, baseline: SteadyState, reverted_at: float,
                     within: float, tolerance: Tolerance | None = None, hold: float = 2.0,
                     interval: float = 0.25, clock: Clock | None = None) -> Recovery:
    """Seconds from ``reverted_at`` until the client steady state is back within
    ``tolerance`` of ``baseline`` (and held for ``hold`` seconds): :func:`time_to_recover`
    over ``source``.

    ``reverted_at`` is a wall-clock timestamp (``time.time()``, or ``clock.wall()``).
    Raises :class:`DrillFailed` with the last reading if it does not recover
    ``within`` seconds of the call.
    """
    tolerance = tolerance or Tolerance()

    def within_tolerance() -> Probe[SteadyState]:
        reading = source.steady_state()
        return Probe(done=tolerance.holds(reading, baseline), value=reading,
                     seen=f"{reading.describe()} vs baseline {baseline.describe()}")

    try:
        recovered = time_to_recover(within_tolerance, since=reverted_at, within=within,
                                    awaited="steady state back within tolerance of baseline",
                                    hold=hold, interval=interval, clock=clock)
    except NotReady as exc:
        raise DrillFailed("recovery", str(exc)) from exc
    assert recovered.reached is not None
    return Recovery(recovered.seconds, baseline, recovered.reached)
