"""Process faults through the runtime: kill, terminate, pause.

Faults only inject and revert what they changed: a killed component is brought back
by the stack's supervisor, never by the fault, whose revert only waits for it.

Each is a frozen dataclass on :class:`FaultBase`, so revert always runs. What the
fault saw (exit status, seconds to ready) lands in its ``observed`` record::

    with KillProcess(stack, "node1") as fault:
        ...                      # node1's main process was SIGKILLed (a crash)
    fault.observed.ready_after_s  # the stack's supervisor restarted it: death -> ready
    fault.observed.not_back       # set when the stack did not bring it back in time
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from harness.errors import FaultApplyError, NotReady
from harness.faults.base import FaultBase
from harness.stack.processes import process_state, process_title, titled
from harness.stack.stack import Stack
from harness.waits import Probe, Wait

SUPERVISOR_RESTARTS = "the supervisor restarts {component}"
RESTART_WITHIN_S = 180.0  # a vLLM node takes 40-65 s to ready, longer on a busy host


@dataclass
class Observed:
    """What a process fault measured (filled in as it runs)."""

    exit_status: int | None = None
    applied_at: float | None = None
    reverted_at: float | None = None
    ready_after_s: float | None = None  # the stack's restart-to-ready: death -> ready
    killed_pid: int | None = None
    restarted_pid: int | None = None
    not_back: str | None = None  # why the stack did not bring it back within the bound
    applied_monotonic: float | None = None
    exited_at: float | None = None  # SIGTERM: when the main process was seen gone
    died_monotonic: float | None = None  # SIGTERM: its exit (or the SIGKILL after grace)
    escalated: bool = False  # SIGTERM: it outlived the grace and was SIGKILLed


@dataclass(frozen=True)
class _ProcessFault(FaultBase):
    stack: Stack
    component: str
    observed: Observed = field(default_factory=Observed, compare=False)
    restart_within_s: float = RESTART_WITHIN_S

    def _gone(self) -> bool:
        return not self.stack.pids(self.component)

    @property
    def restart_property(self) -> str:
        """The stack property a drill judges: the supervisor brought the component back."""
        return SUPERVISOR_RESTARTS.format(component=self.component)

    def _await_restart_by_the_stack(self) -> None:
        """Revert nothing: wait (bounded) for the stack's supervisor to bring the component
        back as a new incarnation that passes its readiness probe, and time it from the
        kill. Not back in time is recorded in ``observed.not_back`` for the drill to judge
        (a stack failure, not an undone fault)."""
        killed_at = self.observed.applied_at
        if killed_at is None or self.observed.killed_pid is None or self._back():
            return  # never applied, or already back and timed
        try:
            Wait(within=self.restart_within_s, interval=0.25).until(
                f"the stack to restart {self.component}", self._restart_probe)
        except (NotReady, _GaveUp) as exc:
            self.observed.not_back = str(exc)
            return
        self.observed.reverted_at = time.time()
        died = self.observed.died_monotonic or self.observed.applied_monotonic
        self.observed.ready_after_s = time.monotonic() - (died or time.monotonic())

    def _back(self) -> bool:
        return self.observed.ready_after_s is not None

    def _restart_probe(self) -> Probe[None]:
        """A new incarnation passing its readiness probe; :class:`_GaveUp` as soon as the
        stack's supervisor says none will come (no use waiting out the bound)."""
        pid = self.stack.pid(self.component)
        if pid is None or pid == self.observed.killed_pid:
            reason = self.stack.gave_up(self.component)
            if reason is not None:
                raise _GaveUp(f"the stack will not restart {self.component}: {reason}")
            return Probe(done=False, seen=f"no new incarnation (main pid {pid})")
        self.observed.restarted_pid = pid
        return Probe(done=self.stack.healthy(self.component),
                     seen=f"new incarnation pid {pid} not ready yet")

    def _mark_applied(self, pid: int) -> None:
        self.observed.applied_at = time.time()
        self.observed.killed_pid = pid
        self.observed.applied_monotonic = time.monotonic()

    def main_process_gone(self) -> bool:
        """The main process the fault hit has exited (its pid is gone or a zombie)."""
        pid = self.observed.killed_pid
        return pid is not None and not _alive(pid)

    def _verify_reverted(self) -> bool:
        return True  # nothing was changed; whether the stack came back is the drill's call

    def _revert(self) -> None:
        self._await_restart_by_the_stack()


class _GaveUp(Exception):
    """The stack's supervisor or engine will not bring the component back."""


def _alive(pid: int) -> bool:
    return process_state(pid) not in ("?", "Z", "X")


@dataclass(frozen=True)
class KillProcess(_ProcessFault):
    """SIGKILL the component's main process (a crash); revert waits for the stack's
    supervisor to restart it and records restart-to-ready."""

    def describe(self) -> str:
        return f"SIGKILL {self.component}'s main process"

    def _apply(self) -> None:
        # Marked once the signal is sent: a refused crash (no process control, nothing
        # running) applied nothing, so its revert has no restart to wait for.
        self._mark_applied(self.stack.crash(self.component, signal.SIGKILL))

    def _verify_applied(self) -> bool:
        Wait(within=10, interval=0.05).until_true(
            f"{self.component}'s main process to die", self.main_process_gone)
        return True


@dataclass(frozen=True)
class TerminateProcess(_ProcessFault):
    """SIGTERM the main process, SIGKILL after ``grace_s``; revert waits for the stack.
    ``main_pid``: the incarnation to signal, read by the drill before it picks its moment,
    so the signal leaves the moment it is applied."""

    grace_s: float = 10.0
    main_pid: int | None = None

    def describe(self) -> str:
        return f"SIGTERM {self.component} (SIGKILL after {self.grace_s:g}s)"

    def _apply(self) -> None:
        pid = self.stack.crash(self.component, signal.SIGTERM, main_pid=self.main_pid)
        self._mark_applied(pid)
        try:
            Wait(within=self.grace_s, interval=0.1).until_true(
                f"{self.component} to exit after SIGTERM", self.main_process_gone)
        except NotReady:
            if self.stack.pid(self.component) == pid:
                self.stack.crash(self.component, signal.SIGKILL)
                self.observed.escalated = True
        else:
            self.observed.exited_at = time.time()
        # The supervisor's restart begins at the death, not at the SIGTERM: the drain
        # before it is the node's (bounded by its shutdown timeout and measured apart)
        self.observed.died_monotonic = time.monotonic()

    def _verify_applied(self) -> bool:
        Wait(within=10, interval=0.05).until_true(
            f"{self.component}'s main process to die", self.main_process_gone)
        return True


@dataclass(frozen=True)
class PauseProcess(_ProcessFault):
    """SIGSTOP the whole group (a hung process: connections open, nothing answers), or
    only its processes titled ``only`` (``VLLM::EngineCore``: a hung engine behind an API
    server that still answers). SIGCONT on revert; nothing else is touched."""

    only: str | None = None

    def describe(self) -> str:
        part = f" ({self.only} only)" if self.only else ""
        return f"SIGSTOP {self.component}{part}"

    def _apply(self) -> None:
        self.observed.applied_at = time.time()
        if self.only is None:
            self.stack.signal(self.component, signal.SIGSTOP)
            return
        targets = self.targets()
        if not targets:
            raise FaultApplyError(
                f"{self.component} has no process titled {self.only!r} "
                f"(its processes: {[process_title(p) for p in self.stack.pids(self.component)]})")
        for pid in targets:
            self.stack.signal_process(self.component, pid, signal.SIGSTOP)

    def targets(self) -> tuple[int, ...]:
        """The processes this fault stops: all of the component's, or those titled ``only``."""
        pids = self.stack.pids(self.component)
        if self.only is None:
            return pids
        return titled(pids, self.only)

    def _verify_applied(self) -> bool:
        # SIGSTOP reaches each process of the group asynchronously: wait briefly for all.
        Wait(within=5, interval=0.05).until("every process it stops to stop", lambda: Probe(
            done=self._states() == {"T"}, seen=f"states {sorted(self._states())}"))
        return self.only is None or bool(self.running_besides())

    def running_besides(self) -> tuple[int, ...]:
        """The component's processes this fault leaves running (its API server)."""
        stopped = set(self.targets())
        return tuple(p for p in self.stack.pids(self.component)
                     if p not in stopped and process_state(p) != "T")

    def _revert(self) -> None:
        if self.stack.pid(self.component) is None:
            return
        if self.only is None:
            self.stack.signal(self.component, signal.SIGCONT)
        else:
            for pid in self.targets():
                self.stack.signal_process(self.component, pid, signal.SIGCONT)
        self.observed.reverted_at = time.time()

    def _verify_reverted(self) -> bool:
        return "T" not in self._states()

    def _states(self) -> set[str]:
        return {process_state(p) for p in self.targets()}
