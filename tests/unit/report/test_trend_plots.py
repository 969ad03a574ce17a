"""The report's trends: each drill over its recorded runs, drawn once there are three."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history.schema import db_path
from harness.history.store import import_runs
from harness.report.html import build_report
from harness.report.plots import matplotlib_available
from harness.report.trend_plots import MIN_RUNS, plot_trend, recorded_by_drill, too_few
from tests.unit.history.runs import DAY, T0, journal, recorded, write_run

PNG = b"\x89PNG\r\n\x1a\n"
needs_matplotlib = pytest.mark.skipif(not matplotlib_available(),
                                      reason="matplotlib (the report extra) is not installed")


def home_with(tmp_path: Path, runs: int) -> Path:
    home = tmp_path / "home"
    for i in range(runs):
        write_run(home, f"r{i}", journal("node_kill", f"r{i}", T0 + i * DAY, lag=2.0 + i,
                                         outcome="failed" if i == 1 else "passed"))
    import_runs(db_path(home), home=home)
    return home


def test_fewer_runs_than_a_trend_needs_give_a_note() -> None:
    runs = [recorded(started_at=T0 + i) for i in range(MIN_RUNS - 1)]
    assert plot_trend(runs).png is None
    assert plot_trend(runs).note == too_few(MIN_RUNS - 1) == (
        "2 recorded runs of this drill: a trend needs 3.")


@needs_matplotlib
def test_three_runs_draw_a_trend() -> None:
    runs = [recorded(started_at=T0 + i, recovery=10.0 + i, lag=1.0,
                     outcome="failed" if i == 1 else "passed") for i in range(MIN_RUNS)]
    drawn = plot_trend(runs)
    assert drawn.png is not None and drawn.png.startswith(PNG) and drawn.note == ""


def test_the_history_gives_each_drills_runs_oldest_first(tmp_path: Path) -> None:
    grouped = recorded_by_drill(home_with(tmp_path, 4))
    assert list(grouped) == ["node_kill"]
    assert [r.run_id for r in grouped["node_kill"]] == ["r0", "r1", "r2", "r3"]
    assert recorded_by_drill(tmp_path / "nowhere") == {}


@needs_matplotlib
def test_the_report_shows_the_trend_of_a_drill_with_enough_runs(tmp_path: Path) -> None:
    home = home_with(tmp_path, 3)
    page = build_report(home / "runs" / "r2", home=home).read_text()
    assert "<h3>Trend</h3>" in page
    assert 'alt="trend of node_kill' in page


def test_the_report_says_why_there_is_no_trend_yet(tmp_path: Path) -> None:
    home = home_with(tmp_path, 2)
    page = build_report(home / "runs" / "r1", home=home).read_text()
    assert "2 recorded runs of this drill: a trend needs 3." in page
    assert "<h3>Trend</h3>" not in build_report(home / "runs" / "r1",
                                                tmp_path / "plain.html").read_text()
