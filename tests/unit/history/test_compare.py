"""Two runs side by side: outcomes, measurement deltas, and missing data shown as missing."""

from __future__ import annotations

import pytest

from harness.history.compare import Delta, compare_runs
from tests.unit.history.runs import T0, recorded


def test_deltas_cover_both_runs_and_mark_what_is_missing() -> None:
    a = [recorded("node_kill", started_at=T0, recovery=10.0, lag=4.0),
         recorded("gone", started_at=T0)]
    b = [recorded("node_kill", started_at=T0 + 100, outcome="failed", recovery=15.0)]
    deltas = compare_runs(a, b)
    assert deltas == [
        Delta("gone", "outcome", "passed", None),
        Delta("gone", "recovery_s", 12.0, None),
        Delta("node_kill", "outcome", "passed", "failed"),
        Delta("node_kill", "detection_lag_s.NodeDown", 4.0, None),
        Delta("node_kill", "recovery_s", 10.0, 15.0),
    ]
    assert deltas[-1].change == 5.0
    assert deltas[-1].ratio == pytest.approx(0.5)
    assert deltas[1].change is None
    assert deltas[2].ratio is None


def test_a_drill_recorded_twice_in_a_run_compares_its_newest_record() -> None:
    a = [recorded(started_at=T0 + 1, recovery=11.0), recorded(started_at=T0, recovery=99.0)]
    assert compare_runs(a, a)[1] == Delta("node_kill", "recovery_s", 11.0, 11.0)


def test_a_zero_base_has_no_ratio() -> None:
    assert Delta("d", "k", 0.0, 1.0).ratio is None
