"""FaultBase: revert always runs; an unverified apply is Inconclusive (a FaultApplyError)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.errors import FaultApplyError, FaultRevertError, FaultUnverified, Inconclusive
from harness.faults.base import Fault, FaultBase


@dataclass(frozen=True)
class Recorder(FaultBase):
    """A fault that logs its hooks and fails where told."""

    log: list[str] = field(default_factory=list)
    fail_apply: bool = False
    applied_ok: bool = True
    verify_raises: bool = False
    fail_revert: bool = False
    reverted_ok: bool = True

    def describe(self) -> str:
        return "recorder"

    def _apply(self) -> None:
        self.log.append("apply")
        if self.fail_apply:
            raise OSError("apply exploded")

    def _verify_applied(self) -> bool:
        self.log.append("verify")
        if self.verify_raises:
            raise OSError("cannot read the proxy's counters")
        return self.applied_ok

    def _revert(self) -> None:
        self.log.append("revert")
        if self.fail_revert:
            raise OSError("revert exploded")

    def _verify_reverted(self) -> bool:
        return self.reverted_ok


def test_is_a_fault() -> None:
    assert isinstance(Recorder(), Fault)


def test_context_manager_applies_then_reverts() -> None:
    fault = Recorder()
    with fault as entered:
        assert entered is fault
        assert fault.log == ["apply", "verify"]
    assert fault.log == ["apply", "verify", "revert"]


def test_revert_runs_when_the_body_raises() -> None:
    fault = Recorder()
    with pytest.raises(KeyError), fault:
        raise KeyError("body")
    assert fault.log[-1] == "revert"


def test_revert_runs_on_keyboard_interrupt() -> None:
    fault = Recorder()
    with pytest.raises(KeyboardInterrupt), fault:
        raise KeyboardInterrupt
    assert fault.log[-1] == "revert"


def test_unverified_apply_raises_and_still_reverts() -> None:
    fault = Recorder(applied_ok=False)
    with pytest.raises(FaultApplyError, match="applied but not observed"), fault:
        pytest.fail("the body must not run")
    assert fault.log == ["apply", "verify", "revert"]


def test_unverified_apply_makes_the_drill_inconclusive() -> None:
    with pytest.raises(Inconclusive) as info, Recorder(applied_ok=False):
        pytest.fail("the body must not run")
    assert isinstance(info.value, FaultUnverified)
    assert info.value.what == "recorder"


def test_a_verifier_that_cannot_look_is_inconclusive_with_what_it_saw() -> None:
    fault = Recorder(verify_raises=True)
    with pytest.raises(FaultUnverified, match="cannot read the proxy's counters"):
        fault.apply()
    assert fault.log == ["apply", "verify", "revert"]


def test_failing_apply_is_not_inconclusive() -> None:
    with pytest.raises(FaultApplyError) as info:
        Recorder(fail_apply=True).apply()
    assert not isinstance(info.value, Inconclusive)


def test_failing_apply_is_wrapped_and_reverted() -> None:
    fault = Recorder(fail_apply=True)
    with pytest.raises(FaultApplyError, match="apply exploded") as info:
        fault.apply()
    assert isinstance(info.value.__cause__, OSError)
    assert fault.log == ["apply", "revert"]


def test_revert_failure_during_failed_apply_is_noted() -> None:
    fault = Recorder(fail_apply=True, fail_revert=True)
    with pytest.raises(FaultApplyError) as info:
        fault.apply()
    assert any("revert exploded" in note for note in info.value.__notes__)


def test_revert_failure_surfaces_with_the_body_error_as_context() -> None:
    fault = Recorder(fail_revert=True)
    with pytest.raises(FaultRevertError, match="revert exploded") as info, fault:
        raise KeyError("body")
    assert any("KeyError" in note for note in info.value.__notes__)


def test_unverified_revert_raises() -> None:
    with pytest.raises(FaultRevertError, match="still observed"), Recorder(reverted_ok=False):
        pass
