"""Findings: the drills of a run that did not pass, ready for a tracker; none when all
passed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.drill.journal import AlertRecord, Journal, Verdict, write_journal
from harness.report.findings import FINDINGS_FILE, write_findings

T0 = 1_796_000_000.0


def journal(drill: str, outcome: str) -> Journal:
    return Journal(drill=drill, run_id="r1", started_at=T0, ended_at=T0 + 90, outcome=outcome)


def test_every_drill_passed_no_findings(tmp_path: Path) -> None:
    write_journal(journal("oom_caps", "passed"), tmp_path)
    assert write_findings(tmp_path) is None
    assert not (tmp_path / FINDINGS_FILE).exists()


def test_a_failed_drill_says_what_did_not_hold_with_its_evidence(tmp_path: Path) -> None:
    write_journal(journal("cancel_storm", "passed"), tmp_path)
    write_journal(replace(
        journal("node_restart_sigkill", "failed"),
        verdicts=(Verdict("every gateway marks the node down", True, "2.1s"),
                  Verdict("the supervisor restarts node1", False, "no new incarnation")),
        measurements={"recovery_s": 53.6, "streams_failed_at_fault": 2.0},
        alerts=(AlertRecord("NodeDown", "firing", T0 + 30, {"node": "node1"}),),
        error="DrillFailed: the supervisor restarts node1: no new incarnation"), tmp_path)
    write_journal(replace(journal("timeout_spike", "inconclusive"),
                          error="Inconclusive: the toxic held connections"), tmp_path)
    written = write_findings(tmp_path)
    assert written is not None
    text = written.read_text()
    assert text.startswith("# Findings: 2 of 3 drills did not pass")
    assert "## node_restart_sigkill: FAILED" in text
    assert "  - **the supervisor restarts node1**: no new incarnation" in text
    assert "every gateway marks the node down" not in text  # it held
    assert "- held: 1 of 2 properties checked" in text
    assert "recovery_s 53.6, streams_failed_at_fault 2" in text
    assert f"[NodeDown]({tmp_path}/runbooks/NodeDown.md)" in text
    # the report's anchor of the second journal (sorted: cancel_storm, node_restart, ...)
    assert f"({tmp_path}/report/index.html#drill-1-node-restart-sigkill)" in text
    assert "## timeout_spike: INCONCLUSIVE" in text
    assert "cancel_storm" not in text
