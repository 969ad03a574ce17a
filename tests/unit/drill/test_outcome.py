"""A drill's outcome: passed, failed, or INCONCLUSIVE (never counted as passed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.drill.run import outcome_of
from harness.errors import DrillFailed, FaultUnverified, Inconclusive
from tests.unit.drill.fakestack import FakeStack


def test_a_drill_that_ended_well_passed() -> None:
    assert outcome_of(None) == "passed"


def test_an_unproven_precondition_is_inconclusive_not_failed() -> None:
    assert outcome_of(Inconclusive("streams in flight", "running=0")) == "inconclusive"


def test_an_unverified_fault_is_inconclusive_even_when_aborted() -> None:
    assert outcome_of(FaultUnverified("SIGKILL node1", "group alive"),
                      aborted=True) == "inconclusive"


def test_a_property_that_did_not_hold_failed() -> None:
    assert outcome_of(DrillFailed("NodeDown goes firing", "never")) == "failed"


def test_an_interrupted_session_is_neither_a_pass_nor_a_failure() -> None:
    assert outcome_of(KeyboardInterrupt()) == "interrupted"
    assert outcome_of(KeyboardInterrupt(), aborted=True) == "aborted"


def test_properties_judged_together_are_all_recorded_and_all_failures_named(
        tmp_path: Path) -> None:
    drill = FakeStack().drill(tmp_path)
    with pytest.raises(DrillFailed) as failed:
        drill.check_together(("streams complete", False, "2 aborted"),
                             ("nothing else fails", True, "0 failed"),
                             ("the node exits by itself", False, "SIGKILLed"))
    assert failed.value.property == "streams complete"
    assert str(failed.value) == ("streams complete: 2 aborted; "
                                 "the node exits by itself: SIGKILLed")
    assert [(v.property, v.ok) for v in drill.verdicts] == [
        ("streams complete", False), ("nothing else fails", True),
        ("the node exits by itself", False)]


def test_properties_that_all_hold_together_pass(tmp_path: Path) -> None:
    drill = FakeStack().drill(tmp_path)
    drill.check_together(("streams complete", True, ""), ("nothing else fails", True, ""))
    assert all(v.ok for v in drill.verdicts) and len(drill.verdicts) == 2
