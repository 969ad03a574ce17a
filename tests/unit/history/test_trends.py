"""Trends per drill: pass rate, recovery against its median, detection lag, error budget,
and the regressions flagged (slower than the median by a margin; no pass lately)."""

from __future__ import annotations

import pytest

from harness.history.trends import TrendSettings, drill_trend, regressed, trends
from tests.unit.history.runs import DAY, T0, recorded

SETTINGS = TrendSettings(last=5, margin=0.25, min_delta_s=1.0, freshness_s=7 * DAY)


@pytest.mark.parametrize(("latest", "median", "flagged"), [
    (15.0, 12.0, False),   # +25%: at the margin, not above it
    (15.1, 12.0, True),
    (1.3, 1.0, False),     # +30% but only 0.3 s: noise
    (None, 12.0, False),   # the latest run never recovered: its outcome says so
    (20.0, None, False),   # nothing to compare with yet
])
def test_regressed(latest: float | None, median: float | None, flagged: bool) -> None:
    assert regressed(latest, median, SETTINGS) is flagged


def test_a_steady_drill_is_not_flagged() -> None:
    runs = [recorded(started_at=T0 + i * DAY, recovery=12.0 + i % 2) for i in range(6)]
    trend = drill_trend(runs, now=T0 + 6 * DAY, settings=SETTINGS)
    assert (trend.runs, trend.passed, trend.pass_rate) == (5, 5, 1.0)  # the last 5 only
    assert trend.flags == ()
    assert trend.last_run_at == T0 + 5 * DAY


def test_a_slower_recovery_than_the_median_is_flagged() -> None:
    runs = [recorded(started_at=T0 + i, recovery=10.0) for i in range(4)]
    runs.append(recorded(started_at=T0 + 10, recovery=20.0))
    trend = drill_trend(runs, now=T0 + 20, settings=SETTINGS)
    assert (trend.recovery_s, trend.recovery_median_s) == (20.0, 10.0)
    assert trend.flags == ("recovery 20.0s > median 10.0s +25%",)


def test_a_slower_detection_is_flagged() -> None:
    runs = [recorded(started_at=T0 + i, lag=3.0) for i in range(3)]
    runs.append(recorded(started_at=T0 + 10, lag=9.0))
    trend = drill_trend(runs, now=T0 + 20, settings=SETTINGS)
    assert trend.flags == ("detection 9.0s > median 3.0s +25%",)


def test_no_pass_within_the_freshness_window_is_flagged() -> None:
    runs = [recorded(started_at=T0, outcome="passed"),
            recorded(started_at=T0 + 8 * DAY, outcome="failed"),
            recorded(started_at=T0 + 9 * DAY, outcome="inconclusive")]
    trend = drill_trend(runs, now=T0 + 9 * DAY, settings=SETTINGS)
    assert trend.passed == 1
    assert trend.last_pass_at == T0
    assert trend.flags == ("no pass in 7 days",)


def test_a_drill_that_never_passed_is_flagged() -> None:
    trend = drill_trend([recorded(outcome="failed")], now=T0, settings=SETTINGS)
    assert trend.flags == ("no pass in 7 days",)
    assert trend.last_pass_at is None


def test_error_budget_is_failed_requests_against_the_objective() -> None:
    runs = [recorded(started_at=T0, requests=100, ok=99),
            recorded(started_at=T0 + 1, requests=100, ok=97)]
    trend = drill_trend(runs, now=T0, settings=SETTINGS)
    assert trend.error_ratio == pytest.approx(0.02)
    assert trend.budget_used == pytest.approx(2.0)  # twice what 99% allows


def test_no_load_means_no_error_budget_not_zero() -> None:
    trend = drill_trend([recorded()], now=T0, settings=SETTINGS)
    assert (trend.error_ratio, trend.budget_used) == (None, None)


def test_trends_are_one_per_drill_in_name_order() -> None:
    runs = [recorded("b"), recorded("a"), recorded("b", started_at=T0 + 1)]
    assert [(t.drill, t.runs) for t in trends(runs, now=T0)] == [("a", 1), ("b", 2)]


def test_a_trend_needs_a_run() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        drill_trend([], now=T0)
