"""A drill's journal becomes its test's JUnit XML properties."""

from __future__ import annotations

from harness.drill.journal import Journal, Verdict, junit_properties


def test_outcome_verdicts_and_measurements_are_properties() -> None:
    journal = Journal(drill="oom_kill", run_id="r", started_at=1.0, ended_at=9.0,
                      outcome="failed", measurements={"recovery_s": 12.5},
                      verdicts=(Verdict("node2 leaves rotation", True),
                                Verdict("NodeDown goes firing", False, "never fired")))
    assert junit_properties(journal) == [
        ("llm-drill.oom_kill.outcome", "failed"),
        ("llm-drill.oom_kill.verdict.node2 leaves rotation", "held"),
        ("llm-drill.oom_kill.verdict.NodeDown goes firing", "failed: never fired"),
        ("llm-drill.oom_kill.recovery_s", 12.5),
    ]
