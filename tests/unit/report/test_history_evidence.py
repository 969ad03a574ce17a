"""Runbooks that grow with evidence: each alert's drill rows come from the history (the
last runs of each drill), and what on-call wrote by hand survives regeneration."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.history.queries import alert_runs
from harness.history.schema import connect, db_path
from harness.history.store import import_runs
from harness.report.evidence import evidence_from_history, history_evidence, write_runbooks
from harness.report.runbooks import (
    HAND_WRITTEN_BEGIN,
    HAND_WRITTEN_END,
    hand_written,
    render_runbooks,
)
from harness.topology import load_topology
from tests.unit.history.runs import DAY, T0, journal, write_run


def recorded_home(tmp_path: Path) -> Path:
    """Four node_kill runs (lags 2, 4, 6, 30 s; the last failed) and one drill that saw
    no alert, recorded in the history under ``tmp_path``."""
    home = tmp_path / "home"
    lags = (2.0, 4.0, 6.0, 30.0)
    for i, lag in enumerate(lags):
        outcome = "failed" if i == len(lags) - 1 else "passed"
        write_run(home, f"r{i}", journal("node_kill", f"r{i}", T0 + i * DAY, lag=lag,
                                         recovery=10.0 + i, outcome=outcome),
                  journal("cancel_storm", f"r{i}", T0 + i * DAY + 100, lag=None))
    import_runs(db_path(home), home=home)
    return home


def test_the_history_gives_each_drill_one_row_over_its_last_runs(tmp_path: Path) -> None:
    home = recorded_home(tmp_path)
    [row] = history_evidence(home)["NodeDown"]
    assert (row.drill, row.runs, row.notes) == ("node_kill", 4, "1 failed, 3 passed")
    assert row.detection_lag_s == 5.0            # the median of 2, 4, 6, 30
    assert row.detection_lag_p95_s == pytest.approx(26.4)  # interpolated, like numpy
    assert row.recovery_s == 11.5                # the median of 10, 11, 12, 13
    assert row.run_at == "2023-11-17T22:13:20Z"  # the newest run
    assert row.report == ""                      # no report was built for it
    assert "KVCacheNotReleased" not in history_evidence(home)


def test_only_the_last_runs_count(tmp_path: Path) -> None:
    db = connect(db_path(recorded_home(tmp_path)))
    try:
        runs = alert_runs(db, last=2)
    finally:
        db.close()
    [row] = evidence_from_history(runs)["NodeDown"]
    assert (row.runs, row.detection_lag_s) == (2, 18.0)  # 6 and 30


def test_runbooks_link_the_newest_report_and_render_the_same_twice(tmp_path: Path) -> None:
    home = recorded_home(tmp_path)
    report = home / "runs" / "r3" / "report" / "index.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html></html>")
    out = tmp_path / "books"
    write_runbooks(home / "runs" / "r3", out, load_topology(), home=home)
    first = (out / "NodeDown.md").read_text()
    assert (f"| node_kill | 4 | 2023-11-17T22:13:20Z | 5.00 s / 26.40 s | 11.50 s "
            f"| 1 failed, 3 passed | {report} |") in first
    write_runbooks(home / "runs" / "r3", out, load_topology(), home=home)
    assert (out / "NodeDown.md").read_text() == first


def test_without_a_history_the_runs_journals_fill_the_runbooks(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "home", "r0", journal("node_kill", "r0", T0, lag=3.0))
    write_runbooks(run_dir, tmp_path / "books", load_topology(), home=tmp_path / "home")
    page = (tmp_path / "books" / "NodeDown.md").read_text()
    assert "| node_kill | 1 | 2023-11-14T22:13:20Z | 3.00 s | 12.00 s | passed | - |" in page


def test_what_on_call_wrote_survives_regeneration(tmp_path: Path) -> None:
    topology = load_topology()
    render_runbooks(topology, out_dir=tmp_path)
    page = tmp_path / "NodeDown.md"
    text = page.read_text()
    assert hand_written(text) is not None
    ours = "- 2026-11-30: node2's disk was full; `df -h /var/lib/vllm` first.\n- ask #serving"
    start = text.index(HAND_WRITTEN_BEGIN) + len(HAND_WRITTEN_BEGIN)
    page.write_text(text[:start] + "\n" + ours + "\n" + text[text.index(HAND_WRITTEN_END):])
    render_runbooks(topology, out_dir=tmp_path)
    again = page.read_text()
    assert hand_written(again) == ours
    assert again.count(HAND_WRITTEN_BEGIN) == 1
    assert hand_written("no markers here") is None
