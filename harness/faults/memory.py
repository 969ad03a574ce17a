"""Memory faults: a real kernel OOM kill of a node through its memory cgroup.

Only the process runtime has cgroups (containers get ``mem_limit`` instead); the
fault says so rather than pretending. What it reports is what the kernel said.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from harness.errors import FaultApplyError
from harness.faults.process import Observed, _ProcessFault
from harness.stack.oom import Balloon, OOMKill, force_oom
from harness.stack.process_runtime import ProcessRuntime


@dataclass
class OOMObserved(Observed):
    kill: OOMKill | None = None
    balloon: Balloon | None = None


@dataclass(frozen=True)
class OOMKillNode(_ProcessFault):
    """Cap a node just above its usage and push it over; revert lifts the cap and
    restarts the node, waiting for a real completion."""

    headroom_mib: int = 128
    within_s: float = 60.0
    observed: OOMObserved = field(default_factory=OOMObserved, compare=False)

    def describe(self) -> str:
        return f"OOM kill of {self.component} (cap = usage + {self.headroom_mib} MiB)"

    def _runtime(self) -> ProcessRuntime:
        runtime = self.stack.runtime
        if not isinstance(runtime, ProcessRuntime):
            raise FaultApplyError(f"{self.describe()} needs the process runtime's cgroups; "
                                  f"this stack runs on {type(runtime).__name__}")
        return runtime

    def _apply(self) -> None:
        runtime = self._runtime()
        self.observed.applied_at = time.time()
        kill, balloon = force_oom(runtime.cgroups, self.component, self.headroom_mib,
                                  runtime.paths.log(f"{self.component}-balloon"), self.within_s)
        self.observed.kill, self.observed.balloon = kill, balloon

    def _verify_applied(self) -> bool:
        return self.observed.kill is not None and self.observed.kill.oom_kills > 0

    def _revert(self) -> None:
        if self.observed.balloon is not None:
            self.observed.balloon.pop()
        runtime = self._runtime()
        if runtime.cgroups.path(self.component).is_dir():
            runtime.cgroups.clear_limit(self.component)
        self._restart()  # after an OOM kill the API server may live on with a dead engine
