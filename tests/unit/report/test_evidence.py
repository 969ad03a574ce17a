"""Runbook evidence: alerts a drill saw firing, with its lags, written into the run dir."""

from __future__ import annotations

import json
from pathlib import Path

from harness.drill.journal import AlertRecord
from harness.report.evidence import (
    evidence_from_journals,
    fired_alerts,
    run_stack_file,
    write_runbooks,
)
from harness.report.runbooks import DrillEvidence
from harness.topology import DEFAULT_STACK_FILE, load_topology
from tests.unit.report.journals import T0, cancel_storm, node_restart, write_run

#: The runbooks committed to the repository (the checkout's, not the installed package's).
COMMITTED_RUNBOOKS = Path(__file__).resolve().parents[3] / "runbooks"


def test_only_firing_alerts_count_once_per_drill() -> None:
    journal = node_restart(alerts=(
        AlertRecord("NodeDown", "firing", T0 + 20, {"node": "node2"}),
        AlertRecord("GatewayBackendDown", "pending", T0 + 14),
        AlertRecord("NodeDown", "resolved", T0 + 36, {"node": "node2"}),
        AlertRecord("NodeDown", "firing", T0 + 21, {"node": "node1"}),
        AlertRecord("CircuitOpen", "firing", T0 + 16)))
    assert fired_alerts(journal) == ("NodeDown", "CircuitOpen")


def test_evidence_carries_lag_recovery_time_and_outcome() -> None:
    evidence = evidence_from_journals([node_restart(), cancel_storm()])
    assert evidence == {
        "NodeDown": [DrillEvidence("node_restart", detection_lag_s=3.5, recovery_s=28.25,
                                   run_at="2023-11-14T22:13:20Z", notes="passed")],
        "KVCacheNotReleased": [DrillEvidence("cancel_storm", detection_lag_s=None,
                                             recovery_s=None, run_at="2023-11-14T22:15:00Z",
                                             notes="failed")]}


def test_drills_seeing_the_same_alert_each_add_a_row() -> None:
    again = node_restart(drill="node_restart_sigterm", measurements={})
    rows = evidence_from_journals([node_restart(), again])["NodeDown"]
    assert [(r.drill, r.detection_lag_s) for r in rows] == [
        ("node_restart", 3.5), ("node_restart_sigterm", None)]


def test_runbooks_go_to_the_run_dir_with_evidence(tmp_path: Path) -> None:
    committed = (COMMITTED_RUNBOOKS / "NodeDown.md").read_text()
    paths = write_runbooks(write_run(tmp_path), topology=load_topology())
    assert {p.parent for p in paths} == {tmp_path / "runbooks"}
    node_down = (tmp_path / "runbooks" / "NodeDown.md").read_text()
    row = "| node_restart | 1 | 2023-11-14T22:13:20Z | 3.50 s | 28.25 s | passed | - |"
    assert row in node_down
    assert "| cancel_storm | 1 | 2023-11-14T22:15:00Z | - | - | failed | - |" in (
        tmp_path / "runbooks" / "KVCacheNotReleased.md").read_text()
    assert "No drill has exercised" in (tmp_path / "runbooks" / "TPSDrop.md").read_text()
    assert (COMMITTED_RUNBOOKS / "NodeDown.md").read_text() == committed


def test_runbooks_out_dir_is_a_choice(tmp_path: Path) -> None:
    paths = write_runbooks(write_run(tmp_path / "run"), tmp_path / "books")
    assert (tmp_path / "books" / "NodeDown.md") in paths


def test_the_run_stack_file_comes_from_its_state(tmp_path: Path) -> None:
    assert run_stack_file(tmp_path) == DEFAULT_STACK_FILE
    stack = tmp_path / "stack.yaml"
    stack.write_text(DEFAULT_STACK_FILE.read_text())
    (tmp_path / "state.json").write_text(json.dumps({"run_id": "r", "stack_file": str(stack)}))
    assert run_stack_file(tmp_path) == stack
    stack.unlink()
    assert run_stack_file(tmp_path, fallback=tmp_path / "x.yaml") == tmp_path / "x.yaml"
