from __future__ import annotations

from pathlib import Path

from harness.render.rules import ALERT_CATALOGUE
from harness.report.runbooks import DrillEvidence, render_runbooks
from harness.topology import load_topology

#: The runbooks committed to the repository (the checkout's, not the installed package's).
COMMITTED_RUNBOOKS = Path(__file__).resolve().parents[3] / "runbooks"


def test_one_runbook_per_alert_with_rule_and_thresholds(tmp_path: Path) -> None:
    topology = load_topology(overrides={"thresholds.ttft_p95_s": 1.25})
    paths = render_runbooks(topology, out_dir=tmp_path)
    assert sorted(p.stem for p in paths) == sorted(ALERT_CATALOGUE)
    ttft = (tmp_path / "TTFTHigh.md").read_text()
    assert "above 1.25 s" in ttft and "> 1.25" in ttft
    assert "llmdrill_client_ttft_seconds_bucket" in ttft and "**Severity:** warning" in ttft
    assert "No drill has exercised this alert yet" in ttft
    for path in paths:
        assert "{{" not in path.read_text() and "{%" not in path.read_text(), path


def test_evidence_fills_the_drill_section(tmp_path: Path) -> None:
    evidence = {"NodeDown": [DrillEvidence("node restart", detection_lag_s=1.234,
                                           recovery_s=52.5, run_at="2024-01-01T00:00Z")]}
    render_runbooks(load_topology(), evidence, out_dir=tmp_path)
    page = (tmp_path / "NodeDown.md").read_text()
    assert "| node restart | 1 | 2024-01-01T00:00Z | 1.23 s | 52.50 s | - | - |" in page
    assert "No drill has exercised" not in page


def test_checked_in_runbooks_are_up_to_date(tmp_path: Path) -> None:
    render_runbooks(load_topology(), out_dir=tmp_path)
    for name in ALERT_CATALOGUE:
        fresh = (tmp_path / f"{name}.md").read_text()
        assert (COMMITTED_RUNBOOKS / f"{name}.md").read_text() == fresh, (
            f"runbooks/{name}.md is stale: regenerate with render_runbooks(load_topology(), "
            "out_dir=Path('runbooks')) from the repository root")
