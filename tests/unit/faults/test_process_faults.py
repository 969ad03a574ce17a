"""Process faults only inject: a crash the stack refuses applied nothing, so its revert
has no restart to wait for; a crash that happened is waited for, bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from harness.errors import FaultApplyError, Unsupported
from harness.faults.process import KillProcess, PauseProcess, TerminateProcess
from harness.stack.stack import Stack


class RefusingStack:
    """A stack without process control: every crash is refused."""

    def pid(self, name: str) -> int | None:
        return 4242

    def pids(self, name: str) -> tuple[int, ...]:
        return (4242,)

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL, *,
              main_pid: int | None = None) -> int:
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
        self.signalled: list[int | None] = []  # the main pid each crash was handed

    def pid(self, name: str) -> int | None:
        return self.proc.pid if self.proc.poll() is None else os.getpid()

    def pids(self, name: str) -> tuple[int, ...]:
        return (self.pid(name) or 0,)

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL, *,
              main_pid: int | None = None) -> int:
        self.signalled.append(main_pid)
        os.kill(self.proc.pid, sig)
        return self.proc.pid

    def healthy(self, name: str) -> bool:
        return self.proc.poll() is not None


@pytest.fixture
def restarting_stack() -> Iterator[RestartingStack]:
    stack = RestartingStack()
    yield stack
    stack.proc.kill()
    stack.proc.wait()
    assert stack.proc.stdout is not None
    stack.proc.stdout.close()


def test_a_sigterms_restart_is_timed_from_the_exit_not_from_the_drain(
        restarting_stack: RestartingStack) -> None:
    """The drain is the node's (bounded by its own grace); the supervisor's restart
    begins when the process is gone."""
    with TerminateProcess(cast(Stack, restarting_stack), "node1", restart_within_s=10,
                          grace_s=5) as fault:
        pass
    seen = fault.observed
    assert seen.applied_at is not None and seen.exited_at is not None
    assert seen.exited_at - seen.applied_at >= 0.5, "the drain happened"
    assert seen.ready_after_s is not None and seen.ready_after_s < 0.4
    assert not seen.escalated
    assert restarting_stack.signalled == [None], "no pid read ahead: the stack looks it up"


def test_a_main_pid_read_ahead_is_the_one_signalled(restarting_stack: RestartingStack) -> None:
    """The drill reads the incarnation before it picks its moment; the fault hands that
    pid to the stack, so the signal needs no lookup when the moment comes."""
    pid = restarting_stack.proc.pid
    with TerminateProcess(cast(Stack, restarting_stack), "node1", restart_within_s=10,
                          grace_s=5, main_pid=pid):
        pass
    assert restarting_stack.signalled == [pid]


class GivingUpStack:
    """One real process; once it is dead its "supervisor" says it will not restart it."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def pid(self, name: str) -> int | None:
        return self.proc.pid if self.proc.poll() is None else None

    def pids(self, name: str) -> tuple[int, ...]:
        pid = self.pid(name)
        return () if pid is None else (pid,)

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL, *,
              main_pid: int | None = None) -> int:
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


class TwoProcessNode:
    """A node of two real processes: an "API server" and one retitled as vLLM's engine."""

    def __init__(self, engine_title: str) -> None:
        sleeper = "import time; time.sleep(60)"
        self.api = subprocess.Popen([sys.executable, "-c", sleeper])
        self.engine = subprocess.Popen(
            ["bash", "-c", f'exec -a "{engine_title}" "{sys.executable}" -c "{sleeper}"'])

    def pid(self, name: str) -> int | None:
        return self.api.pid

    def pids(self, name: str) -> tuple[int, ...]:
        return (self.api.pid, self.engine.pid)

    def signal_process(self, name: str, pid: int, sig: signal.Signals) -> None:
        assert pid in self.pids(name)
        os.kill(pid, sig)

    def close(self) -> None:
        for proc in (self.api, self.engine):
            proc.kill()
            proc.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _titled(node: TwoProcessNode) -> None:
    """Wait until the retitled process has exec'd (its argv is the title)."""
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{node.engine.pid}/cmdline").read_bytes().startswith(b"VLLM::"):
        assert time.monotonic() < deadline, "bash never exec'd the retitled process"
        time.sleep(0.01)


def test_pausing_only_the_engine_stops_it_and_leaves_the_api_server_running() -> None:
    node = TwoProcessNode("VLLM::EngineCore")
    try:
        _titled(node)
        fault = PauseProcess(cast(Stack, node), "node1", only="VLLM::EngineCore")
        with fault:
            assert _state(node.engine.pid) == "T"
            assert _state(node.api.pid) != "T"
            assert fault.targets() == (node.engine.pid,)
            assert fault.running_besides() == (node.api.pid,)
        assert _state(node.engine.pid) != "T"
    finally:
        node.close()


def test_pausing_a_process_the_component_lacks_is_refused_naming_what_it_has() -> None:
    node = TwoProcessNode("VLLM::Other")
    try:
        _titled(node)
        refused = r"no process titled 'VLLM::EngineCore'.*VLLM::Other"
        with pytest.raises(FaultApplyError, match=refused):
            PauseProcess(cast(Stack, node), "node1", only="VLLM::EngineCore").apply()
        assert {_state(node.engine.pid), _state(node.api.pid)}.isdisjoint({"T"})
    finally:
        node.close()
