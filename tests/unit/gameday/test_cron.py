"""Schedule expressions: cron through cronsim, the macros, Chaos Mesh's @every."""

from __future__ import annotations

import pytest

from harness.gameday.cron import MAX_COUNTED, CronError, parse_duration, parse_timing

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
HOUR = 3600.0


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("15m", 900.0),
                                               ("1h30m", 5400.0), ("1.5h", 5400.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15x", "m15", "0s", "1h 30m", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(CronError, match="takes a duration"):
        parse_duration(text)


@pytest.mark.parametrize(("expression", "first"), [
    ("0 3 * * mon", MIDNIGHT + 4 * 24 * HOUR + 3 * HOUR),  # Monday 5 January, 03:00
    ("@hourly", MIDNIGHT + HOUR),
    ("@daily", MIDNIGHT + 24 * HOUR),
    ("*/15 * * * *", MIDNIGHT + 900),
    ("@every 20m", MIDNIGHT + 1200),
])
def test_next_after_is_strictly_after(expression: str, first: float) -> None:
    assert parse_timing(expression).next_after(MIDNIGHT, anchor=MIDNIGHT) == first


@pytest.mark.parametrize(("expression", "reason"), [
    ("0 3 * *", "five cron fields"),
    ("61 * * * *", "Bad minute"),
    ("@fortnightly", "five cron fields"),
    ("@every soon", "takes a duration"),
])
def test_bad_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(CronError, match=reason):
        parse_timing(expression)


def test_latest_due_is_the_newest_and_counts_the_hidden() -> None:
    timing = parse_timing("@hourly")
    assert timing.latest_due(MIDNIGHT, MIDNIGHT + 59 * 60, MIDNIGHT) == (None, 0)
    assert timing.latest_due(MIDNIGHT, MIDNIGHT + HOUR, MIDNIGHT) == (MIDNIGHT + HOUR, 0)
    assert timing.latest_due(MIDNIGHT, MIDNIGHT + 5.5 * HOUR, MIDNIGHT) == (
        MIDNIGHT + 5 * HOUR, 4)


@pytest.mark.parametrize("expression", ["* * * * *", "@every 1m"])
def test_far_behind_jumps_to_the_newest(expression: str) -> None:
    timing = parse_timing(expression)
    now = MIDNIGHT + 30 * 24 * HOUR + 30  # a month of minutes later
    due, hidden = timing.latest_due(MIDNIGHT, now, MIDNIGHT)
    assert due == MIDNIGHT + 30 * 24 * HOUR
    assert hidden == MAX_COUNTED
