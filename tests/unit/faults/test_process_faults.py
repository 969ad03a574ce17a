"""Process faults only inject: a crash the stack refuses applied nothing, so its revert
has no restart to wait for; a crash that happened is waited for, bounded."""

from __future__ import annotations

import signal
import time
from typing import cast

import pytest

from harness.errors import FaultApplyError, Unsupported
from harness.faults.process import KillProcess, TerminateProcess
from harness.stack.stack import Stack


class RefusingStack:
    """A stack without process control: every crash is refused."""

    def pid(self, name: str) -> int | None:
        return 4242

    def pids(self, name: str) -> tuple[int, ...]:
        return (4242,)

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        raise Unsupported("process control", "external", f"crashing {name}")


@pytest.mark.parametrize("fault", [KillProcess, TerminateProcess])
def test_a_refused_crash_is_not_waited_for(fault: type[KillProcess]) -> None:
    subject = fault(cast(Stack, RefusingStack()), "node1", restart_within_s=60)
    began = time.monotonic()
    with pytest.raises(FaultApplyError):
        subject.apply()
    assert time.monotonic() - began < 5
    assert subject.observed.applied_at is None
    assert subject.observed.not_back is None
