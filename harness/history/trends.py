"""Per-drill trends over the last N recorded runs, and the regressions they show.

Pure functions of :class:`~harness.history.queries.RecordedRun` values and a ``now``
(epoch seconds): the caller reads the database and the clock.

- **pass rate**: passed runs / runs (inconclusive, aborted and interrupted are not passes);
- **recovery**: the ``recovery_s`` measurement, latest and median of the runs before it;
- **detection lag**: the slowest ``detection_lag_s.<alert>`` of a run;
- **error budget**: client requests that failed over the drills' load windows, as a share
  of what an availability objective allows (100% = the budget is spent).

Regressions: the latest recovery time (or detection lag) above the median of the runs
before it by more than a margin; no pass within the freshness window.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from harness.drill.journal import RECOVERY_KEY
from harness.history.queries import RecordedRun
from harness.history.store import DETECTION_PREFIX

PASSED = "passed"
DAY_S = 86_400.0


@dataclass(frozen=True)
class TrendSettings:
    last: int = 10  # runs per drill the trend covers
    margin: float = 0.25  # a regression: latest > median * (1 + margin) ...
    min_delta_s: float = 1.0  # ... and by at least this much (tiny numbers are noise)
    freshness_s: float = 7 * DAY_S  # a drill must have passed within this window
    availability: float = 0.99  # the objective the error budget is taken from


@dataclass(frozen=True)
class DrillTrend:
    drill: str
    runs: int
    passed: int
    recovery_s: float | None  # the latest run's
    recovery_median_s: float | None  # of the runs before it
    detection_lag_s: float | None  # the latest run's slowest alert
    detection_lag_median_s: float | None
    error_ratio: float | None  # failed client requests / requests, over the runs
    budget_used: float | None  # error_ratio / (1 - availability)
    last_run_at: float
    last_pass_at: float | None
    flags: tuple[str, ...]

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0


def median_or_none(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def regressed(latest: float | None, median: float | None, settings: TrendSettings) -> bool:
    """``latest`` is above ``median`` by more than the margin (and the minimum delta)."""
    if latest is None or median is None:
        return False
    return (latest > median * (1 + settings.margin)
            and latest - median >= settings.min_delta_s)


def detection_lag(run: RecordedRun) -> float | None:
    """The run's slowest alert detection (its ``detection_lag_s.<alert>`` measurements)."""
    lags = [v for k, v in run.measurements.items() if k.startswith(DETECTION_PREFIX)]
    return max(lags) if lags else None


def error_ratio(runs: Sequence[RecordedRun]) -> float | None:
    requests = sum(r.requests for r in runs)
    return (requests - sum(r.ok for r in runs)) / requests if requests else None


def _latest_and_median(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """(newest value, median of the older ones that were measured); newest first in."""
    if not values:
        return None, None
    return values[0], median_or_none([v for v in values[1:] if v is not None])


def drill_trend(runs: Sequence[RecordedRun], now: float,
                settings: TrendSettings = TrendSettings()) -> DrillTrend:
    """The trend of one drill from its runs (any order; the newest ``settings.last``)."""
    if not runs:
        raise ValueError("a trend needs at least one run")
    window = sorted(runs, key=lambda r: r.started_at, reverse=True)[:settings.last]
    recovery, recovery_median = _latest_and_median(
        [r.measurements.get(RECOVERY_KEY) for r in window])
    lag, lag_median = _latest_and_median([detection_lag(r) for r in window])
    passes = [r.started_at for r in window if r.outcome == PASSED]
    ratio = error_ratio(window)
    flags = []
    if regressed(recovery, recovery_median, settings):
        flags.append(f"recovery {recovery:.1f}s > median {recovery_median:.1f}s "
                     f"+{settings.margin:.0%}")
    if regressed(lag, lag_median, settings):
        flags.append(f"detection {lag:.1f}s > median {lag_median:.1f}s +{settings.margin:.0%}")
    if not passes or now - max(passes) > settings.freshness_s:
        flags.append(f"no pass in {settings.freshness_s / DAY_S:g} days")
    return DrillTrend(
        drill=window[0].drill, runs=len(window), passed=len(passes),
        recovery_s=recovery, recovery_median_s=recovery_median,
        detection_lag_s=lag, detection_lag_median_s=lag_median, error_ratio=ratio,
        budget_used=None if ratio is None else ratio / (1 - settings.availability),
        last_run_at=window[0].started_at, last_pass_at=max(passes) if passes else None,
        flags=tuple(flags))


def by_drill(runs: Sequence[RecordedRun]) -> dict[str, list[RecordedRun]]:
    grouped: dict[str, list[RecordedRun]] = {}
    for run in runs:
        grouped.setdefault(run.drill, []).append(run)
    return grouped


def trends(runs: Sequence[RecordedRun], now: float,
           settings: TrendSettings = TrendSettings()) -> list[DrillTrend]:
    """One trend per drill, in drill-name order."""
    return [drill_trend(group, now, settings)
            for _, group in sorted(by_drill(runs).items())]
