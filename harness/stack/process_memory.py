"""The process runtime's memory capability: one cgroup (v1) per vLLM node.

Implements :class:`~harness.stack.runtime.MemoryControl` over
:class:`~harness.stack.cgroups.MemoryCgroups`; the contract is written there.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import StackError, Unsupported
from harness.runs import Paths
from harness.stack.cgroups import MemoryCgroups
from harness.stack.processes import COMPONENT_ENV, RUN_ID_ENV, Launch, reap, signal_group, spawn
from harness.stack.runtime import Capability

NO_CGROUP_HINT = "only vLLM nodes run in a memory cgroup"


@dataclass
class ProcessHelper:
    """A helper process started by the runtime, leader of its own session."""

    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            signal_group(self.process.pid, signal.SIGKILL)
        if reap(self.process, within=10) is None:
            raise StackError(f"helper pid {self.process.pid} still runs 10 s after SIGKILL")


@dataclass(frozen=True)
class CgroupMemory:
    """Memory control through the run's cgroups; ``has_cgroup(name)`` says which
    components run in one (and raises UnknownComponent for names the stack lacks)."""

    cgroups: MemoryCgroups
    paths: Paths
    has_cgroup: Callable[[str], bool]
    runtime: str = "process"

    def controls(self, name: str) -> bool:
        return self.has_cgroup(name)

    def usage(self, name: str) -> int:
        self._cgroup(name, f"reading {name}'s memory usage")
        return self.cgroups.usage(name)

    def limit(self, name: str) -> int | None:
        self._cgroup(name, f"reading {name}'s memory cap")
        return self.cgroups.limit(name)

    def set_limit(self, name: str, limit_bytes: int) -> None:
        self._cgroup(name, f"capping {name}'s memory")
        self.cgroups.set_limit(name, limit_bytes)

    def clear_limit(self, name: str) -> None:
        self._require_controlled(name, f"lifting {name}'s memory cap")
        if self.cgroups.path(name).is_dir():
            self.cgroups.clear_limit(name)

    def oom_kills(self, name: str) -> int:
        self._cgroup(name, f"reading {name}'s OOM kills")
        return self.cgroups.oom_kills(name)

    def kernel_name(self, name: str) -> str:
        self._require_controlled(name, f"naming {name}'s memory cgroup")
        return self.cgroups.kernel_name(name)

    def prefer_as_oom_victim(self, name: str) -> None:
        """oom_score_adj 1000 for every process in the cgroup (no privilege needed)."""
        cgroup = self._cgroup(name, f"marking {name} as the OOM victim")
        # the whole subtree: a container runtime puts the node one level down
        pids = [pid for procs in sorted(cgroup.rglob("cgroup.procs"))
                for pid in procs.read_text().split()]
        for pid in pids:
            try:
                Path(f"/proc/{pid}/oom_score_adj").write_text("1000")
            except OSError:
                continue

    def run_inside(self, name: str, argv: tuple[str, ...], label: str) -> ProcessHelper:
        cgroup = self._cgroup(name, f"running a helper inside {name}'s memory cgroup")
        env = dict(os.environ, **{RUN_ID_ENV: self.cgroups.run_id, COMPONENT_ENV: label})
        log = self.paths.log(label)
        return ProcessHelper(spawn(Launch(argv, env, log.parent, log, cgroup)))

    def _require_controlled(self, name: str, action: str) -> None:
        if not self.has_cgroup(name):
            raise Unsupported(Capability.MEMORY_CONTROL.value, self.runtime, action,
                              f"{name} has no memory cgroup: {NO_CGROUP_HINT}")

    def _cgroup(self, name: str, action: str) -> Path:
        self._require_controlled(name, action)
        path = self.cgroups.path(name)
        if not path.is_dir():
            raise StackError(f"{action}: {path} does not exist ({name} was never started "
                             "in this run, or the run was torn down)")
        return path
