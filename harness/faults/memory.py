"""Memory faults: a real kernel OOM kill of one node, through the runtime's memory
control (:class:`~harness.stack.runtime.MemoryControl`; a cgroup v1 per node for the
process runtime, the container's cgroup for a container runtime).

Three traps (DESIGN.md, "Memory caps"): memory charged before a process joins a
cgroup stays outside (nodes start inside theirs); a limit below current usage
fails with EBUSY (the limit is set just above usage); and the kill needs pressure
inside the cgroup (a balloon allocates there while the node's processes carry
oom_score_adj 1000, so the kernel picks the node).
What is reported is what the kernel says: the cgroup's ``oom_kill`` counter and
the victim named in the kernel log.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from harness.errors import Unsupported
from harness.faults.process import Observed, _ProcessFault
from harness.stack.kernel_log import find_victim, kernel_log, last_stamp
from harness.stack.runtime import ComponentMemory, Helper
from harness.waits import Probe, Wait


@dataclass(frozen=True)
class OOMKill:
    """What the kernel reported about one forced OOM kill."""

    component: str
    oom_kills: int
    limit_bytes: int
    usage_before_bytes: int
    victim_pid: int | None
    victim_name: str


@dataclass
class Balloon:
    """The balloon process, running inside the component's memory domain."""

    helper: Helper

    def pop(self) -> None:
        self.helper.stop()


def inflate_balloon(memory: ComponentMemory, mib: int) -> Balloon:
    argv = (sys.executable, "-m", "harness.faults.balloon", "--mib", str(mib), "--hold-s", "60")
    return Balloon(memory.run_inside(argv, f"{memory.component}-balloon"))


def force_oom(memory: ComponentMemory, headroom_mib: int,
              within: float = 60.0) -> tuple[OOMKill, Balloon]:
    """Cap the component just above its usage and push it over; return what the kernel did.

    The caller pops the balloon and clears the limit (the memory fault's revert).
    """
    component = memory.component
    before, usage = memory.oom_kills(), memory.usage()
    limit = usage + headroom_mib * 2**20
    memory.set_limit(limit)
    memory.prefer_as_oom_victim()
    kernel_log_mark = last_stamp(kernel_log())
    # Clean file pages (mapped libraries) are reclaimed before anything is killed, so the
    # balloon may need to grow past the headroom by all of them: size it to the whole cap.
    balloon = inflate_balloon(memory, limit // 2**20)
    try:
        Wait(within=within, interval=0.1).until(
            f"the kernel to OOM-kill a process of {component}",
            lambda: Probe(done=memory.oom_kills() > before,
                          seen=f"oom_kill={memory.oom_kills()}"))
    except BaseException:
        balloon.pop()
        memory.clear_limit()
        raise
    pid, name = find_victim(kernel_log(), memory.kernel_name(), kernel_log_mark)
    kill = OOMKill(component, memory.oom_kills() - before, limit, usage, pid, name)
    return kill, balloon


@dataclass
class OOMObserved(Observed):
    kill: OOMKill | None = None
    balloon: Balloon | None = None
    node_pids: tuple[int, ...] = ()  # the node's processes just before the cap (no balloon)

    @property
    def victim_was_the_node(self) -> bool:
        """The kernel's victim (matched in the log by the node's cgroup) is one of the
        node's own processes from before the fault: its API server, engine or worker,
        never the balloon (started later, so not among them)."""
        victim = self.kill.victim_pid if self.kill is not None else None
        return victim is not None and victim in self.node_pids


@dataclass(frozen=True)
class OOMKillNode(_ProcessFault):
    """Cap a node just above its usage and push it over; once the kernel's kill is seen
    the balloon is popped and the cap lifted (again, idempotently, in revert), and the
    revert waits for the stack's supervisor to restart the node."""

    headroom_mib: int = 128
    within_s: float = 60.0
    observed: OOMObserved = field(default_factory=OOMObserved, compare=False)

    def describe(self) -> str:
        return f"OOM kill of {self.component} (cap = usage + {self.headroom_mib} MiB)"

    def _apply(self) -> None:
        memory = self.stack.memory(self.component)  # Unsupported without memory control
        pid = self.stack.pid(self.component)
        self.observed.node_pids = self._node_processes(pid)
        self.observed.kill, self.observed.balloon = force_oom(memory, self.headroom_mib,
                                                              self.within_s)
        self._mark_applied(pid if pid is not None else -1)  # the kill, seen within 0.1 s
        # The kill is done: take the pressure away at once, so the incarnation the
        # supervisor starts is not born into a full, capped cgroup (it would be killed
        # again, by the fault, not the stack).
        self._release_pressure()

    def _verify_applied(self) -> bool:
        return self.observed.kill is not None and self.observed.kill.oom_kills > 0

    def _node_processes(self, main_pid: int | None) -> tuple[int, ...]:
        """The node's server and engine processes; not the group wrapper that leads a
        supervised node's group (it is no part of the node, only its supervision)."""
        if main_pid is None:
            return ()
        try:
            leader = os.getpgid(main_pid)
        except OSError:
            return ()
        return tuple(p for p in self.stack.pids(self.component) if p == main_pid or p != leader)

    def _release_pressure(self) -> None:
        if self.observed.balloon is not None:
            self.observed.balloon.pop()  # idempotent
        self._lift_cap()

    def _revert(self) -> None:
        self._release_pressure()
        # The node's API server exits once its engine died (VLLM_KEEP_ALIVE_ON_ENGINE_DEATH
        # is 0 in the stack), so the stack's supervisor restarts it: wait for that.
        self._await_restart_by_the_stack()

    def _lift_cap(self) -> None:
        try:
            memory = self.stack.memory(self.component)
        except Unsupported:  # no memory control: the apply was refused before any cap
            return
        memory.clear_limit()  # idempotent
