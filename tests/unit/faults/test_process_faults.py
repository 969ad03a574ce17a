"""Process faults only inject: a crash the stack refuses applied nothing, so its revert
has no restart to wait for; a crash that happened is waited for, bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


DRAINS_THEN_EXITS = ("import signal, sys, time\n"
                     "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.6), sys.exit(0)))\n"
                     "print('up', flush=True)\n"
                     "time.sleep(60)\n")


class RestartingStack:
    """One real process that drains for 0.6 s on SIGTERM; once it is gone the
    "supervisor" has a new, healthy incarnation at once."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", DRAINS_THEN_EXITS],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "up\n"

    def pid(self, name: str) -> int | None:
        return self.proc.pid if self.proc.poll() is None else os.getpid()

    def pids(self, name: str) -> tuple[int, ...]:
        return (self.pid(name) or 0,)

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        os.kill(self.proc.pid, sig)
        return self.proc.pid

    def healthy(self, name: str) -> bool:
        return self.proc.poll() is not None


def test_a_sigterms_restart_is_timed_from_the_exit_not_from_the_drain() -> None:
    """The drain is the node's (bounded by its own grace); the supervisor's restart
    begins when the process is gone."""
    stack = RestartingStack()
    try:
        with TerminateProcess(cast(Stack, stack), "node1", restart_within_s=10,
                              grace_s=5) as fault:
            pass
    finally:
        stack.proc.kill()
        stack.proc.wait()
        assert stack.proc.stdout is not None
        stack.proc.stdout.close()
    seen = fault.observed
    assert seen.applied_at is not None and seen.exited_at is not None
    assert seen.exited_at - seen.applied_at >= 0.5, "the drain happened"
    assert seen.ready_after_s is not None and seen.ready_after_s < 0.4
    assert not seen.escalated


class GivingUpStack:
    """One real process; once it is dead its "supervisor" says it will not restart it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def pid(self, name: str) -> int | None:
        return self.proc.pid if self.proc.poll() is None else None

    def pids(self, name: str) -> tuple[int, ...]:
        pid = self.pid(name)
        return () if pid is None else (pid,)

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        os.kill(self.proc.pid, sig)
        return self.proc.pid

    def healthy(self, name: str) -> bool:
        return False

    def gave_up(self, name: str) -> str | None:
        return None if self.proc.poll() is None else "left EXITED (autorestart=false)"


def test_a_restart_the_supervisor_will_not_make_is_not_waited_for() -> None:
    stack = GivingUpStack()
    began = time.monotonic()
    try:
        with KillProcess(cast(Stack, stack), "node1", restart_within_s=60) as fault:
            pass
    finally:
        stack.proc.kill()
        stack.proc.wait()
    assert time.monotonic() - began < 10
    assert fault.observed.ready_after_s is None
    assert fault.observed.not_back == ("the stack will not restart node1: "
                                       "left EXITED (autorestart=false)")
