"""The resilience score: severity-weighted properties, freshness decay, explained."""

from __future__ import annotations

import pytest

from harness.history.score import (
    ScoreSettings,
    explain,
    freshness,
    property_severity,
    stack_score,
)
from tests.unit.history.runs import DAY, T0, recorded

SETTINGS = ScoreSettings(last=10, fresh_s=7 * DAY, half_life_s=7 * DAY)
SERVING = "front door keeps answering"
ALERT = "NodeDown goes firing"


def test_a_property_takes_the_severity_of_the_alert_it_names() -> None:
    severities = {"NodeDown": "warning", "GatewayDown": "page-me"}
    assert property_severity(ALERT, severities) == "warning"
    assert property_severity(SERVING, severities) == "critical"
    assert property_severity("GatewayDown goes firing", severities) == "critical"  # unknown


@pytest.mark.parametrize(("age_days", "factor"), [(0, 1.0), (7, 1.0), (14, 0.5), (21, 0.25)])
def test_freshness_halves_every_half_life_after_the_window(age_days: float,
                                                           factor: float) -> None:
    assert freshness(age_days * DAY, SETTINGS) == pytest.approx(factor)


def test_all_held_and_fresh_scores_100() -> None:
    runs = [recorded(verdicts=((SERVING, True), (ALERT, True)),
                     severities={"NodeDown": "warning"})]
    assert stack_score("embedded", runs, now=T0, settings=SETTINGS).value == 100.0


def test_critical_weighs_three_and_warning_one() -> None:
    # The serving property (critical, 3) held, the alert (warning, 1) did not: 3 / 4.
    runs = [recorded(verdicts=((SERVING, True), (ALERT, False)),
                     severities={"NodeDown": "warning"})]
    assert stack_score("embedded", runs, now=T0, settings=SETTINGS).value == 75.0


def test_success_is_the_share_of_runs_and_a_missing_property_did_not_hold() -> None:
    runs = [recorded(started_at=T0, verdicts=((SERVING, True), (ALERT, True))),
            recorded(started_at=T0 + 1, outcome="failed", verdicts=((SERVING, False),))]
    score = stack_score("embedded", runs, now=T0 + 1, settings=SETTINGS)
    (drill,) = score.drills
    assert [(p.name, p.held, p.runs) for p in drill.properties] == [
        (SERVING, 1, 2), (ALERT, 1, 2)]
    assert score.value == 50.0


def test_a_stale_drill_earns_less() -> None:
    fresh = recorded("a", started_at=T0 + 14 * DAY)
    stale = recorded("b", started_at=T0)  # 14 days old: half its credit
    score = stack_score("embedded", [fresh, stale], now=T0 + 14 * DAY, settings=SETTINGS)
    assert score.value == pytest.approx(75.0)


def test_other_stacks_are_ignored_and_nothing_recorded_scores_zero() -> None:
    runs = [recorded(stack="other", verdicts=((SERVING, False),))]
    assert stack_score("embedded", runs, now=T0).value == 0.0
    assert stack_score("other", runs, now=T0).value == 0.0


def test_the_explanation_adds_up() -> None:
    runs = [recorded(verdicts=((SERVING, True), (ALERT, False)),
                     severities={"NodeDown": "warning"})]
    lines = explain(stack_score("embedded", runs, now=T0 + 14 * DAY, settings=SETTINGS))
    assert lines == [
        "stack embedded: score 37.5 / 100 = 100 x sum(weight x success x freshness) "
        "/ sum(weight)",
        "  node_kill: newest run 14.0 days ago -> freshness x0.50; earned 1.50 of 4",
        f"    critical x3  1/1 held (100%)  {SERVING}",
        f"    warning  x1  0/1 held (0%)  {ALERT}",
        "  total: 1.50 of 4",
    ]
