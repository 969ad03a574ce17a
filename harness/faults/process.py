"""Process faults through the runtime: kill, terminate, pause, restart.

Each is a frozen dataclass on :class:`FaultBase`, so revert always runs. What the
fault saw (exit status, seconds to ready) lands in its ``observed`` record::

    with KillProcess(stack, "node1") as fault:
        ...                      # node1's whole process group is gone
    fault.observed.ready_after_s  # revert restarted it and waited for a real completion
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.faults.base import FaultBase
from harness.stack.processes import group_members
from harness.stack.stack import Stack
from harness.waits import Probe, Wait


@dataclass
class Observed:
    """What a process fault measured (filled in as it runs)."""

    exit_status: int | None = None
    applied_at: float | None = None
    reverted_at: float | None = None
    ready_after_s: float | None = None


@dataclass(frozen=True)
class _ProcessFault(FaultBase):
    stack: Stack
    component: str
    observed: Observed = field(default_factory=Observed, compare=False)

    def _gone(self) -> bool:
        pid = self.stack.pid(self.component)
        return pid is None or not group_members(pid)

    def _restart(self) -> None:
        """Bring the component back unless it already answers (revert is idempotent)."""
        if self.stack.runtime.healthy(self.component):
            return
        if self.stack.pid(self.component) is not None:  # dead, dying or half-dead
            self.stack.runtime.kill(self.component)
        self.stack.start(self.component)
        self.observed.ready_after_s = self.stack.wait_ready(self.component)
        self.observed.reverted_at = time.time()

    def _verify_reverted(self) -> bool:
        return self.stack.is_running(self.component)

    def _revert(self) -> None:
        self._restart()


@dataclass(frozen=True)
class KillProcess(_ProcessFault):
    """SIGKILL the component's whole process group; revert restarts it and waits ready."""

    def describe(self) -> str:
        return f"SIGKILL {self.component}"

    def _apply(self) -> None:
        self.observed.applied_at = time.time()
        self.observed.exit_status = self.stack.runtime.kill(self.component)

    def _verify_applied(self) -> bool:
        return self._gone()


@dataclass(frozen=True)
class TerminateProcess(_ProcessFault):
    """SIGTERM (graceful drain), SIGKILL after ``grace_s``; revert restarts."""

    grace_s: float = 10.0

    def describe(self) -> str:
        return f"SIGTERM {self.component} (SIGKILL after {self.grace_s:g}s)"

    def _apply(self) -> None:
        self.observed.applied_at = time.time()
        self.observed.exit_status = self.stack.runtime.stop(self.component, self.grace_s)

    def _verify_applied(self) -> bool:
        return self._gone()


@dataclass(frozen=True)
class PauseProcess(_ProcessFault):
    """SIGSTOP the whole group (a hung process: connections open, nothing answers)."""

    def describe(self) -> str:
        return f"SIGSTOP {self.component}"

    def _apply(self) -> None:
        self.observed.applied_at = time.time()
        self.stack.runtime.signal(self.component, signal.SIGSTOP)

    def _verify_applied(self) -> bool:
        # SIGSTOP reaches each process of the group asynchronously: wait briefly for all.
        Wait(within=5, interval=0.05).until("every process of the group to stop", lambda: Probe(
            done=self._states() == {"T"}, seen=f"states {sorted(self._states())}"))
        return True

    def _revert(self) -> None:
        if self.stack.pid(self.component) is not None:
            self.stack.runtime.signal(self.component, signal.SIGCONT)
            self.observed.reverted_at = time.time()

    def _verify_reverted(self) -> bool:
        return "T" not in self._states()

    def _states(self) -> set[str]:
        pid = self.stack.pid(self.component)
        return {_state(p) for p in group_members(pid)} if pid else set()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"
