"""Memory caps and OOM kills on an attached compose project's nodes.

A node's container already runs in a memory cgroup (v1) the engine made for it. The cap
is written to that cgroup's ``memory.limit_in_bytes`` from this host, never through
``container.update``: the engine keeps the user's limit in its record of the container
(``HostConfig.Memory``), and the engine's API cannot lift a limit once set (it refuses
anything under 6 MB, 0 means "unchanged"). So the fault changes only the running
incarnation: lifting the cap writes back the limit the user configured (or none), and a
container the engine restarts, after an OOM kill say, starts on the user's limit anyway.

Only where the engine is on this host, the container's pids are provably its own, and
this process may write the memory hierarchy (root, :func:`memory_hierarchy_writable`).
The contract is :class:`~harness.stack.runtime.MemoryControl`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.runs import Paths
from harness.stack.cgroups import MEMORY_ROOT, MemoryCgroups
from harness.stack.kernel_log import kernel_log, kills_in
from harness.stack.process_memory import CgroupMemory

if TYPE_CHECKING:
    from docker.models.containers import Container

RUNTIME = "compose"
#: ``memory.limit_in_bytes`` reads and takes -1 as "no limit"
NO_LIMIT = -1


def memory_hierarchy_writable(root: Path = MEMORY_ROOT) -> bool:
    """This process may write cgroup v1's memory hierarchy (root, a v1 host)."""
    return (root / "cgroup.procs").exists() and os.access(root, os.W_OK)


def memory_cgroup_of(pid: int, root: Path = MEMORY_ROOT) -> Path | None:
    """The memory cgroup (v1) ``pid`` runs in, or None when it is gone or not on v1."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return root / path.lstrip("/")
    return None


def configured_limit(container: Container) -> int:
    """The limit the user gave the container (its ``HostConfig.Memory``), -1 for none."""
    value = int(container.attrs["HostConfig"].get("Memory") or 0)
    return value if value > 0 else NO_LIMIT


@dataclass(frozen=True, kw_only=True)
class ContainerCgroups(MemoryCgroups):
    """The engine's memory cgroups of a project's containers, found from each one's main
    pid. A container that does not run has none: its path is the last one found (gone,
    or the next incarnation's: the engine names a container's cgroup by its id), so the
    kernel's report of an OOM kill that ended it can still be matched to it."""

    container_of: Callable[[str], Container]
    last_found: dict[str, Path] = field(default_factory=dict, compare=False)

    def path(self, component: str) -> Path:
        container = self.container_of(component)
        container.reload()
        pid = int(container.attrs["State"].get("Pid") or 0)
        found = memory_cgroup_of(pid, self.base.parent) if pid else None
        if found is not None:
            self.last_found[component] = found
        return self.last_found.get(component, self.base.parent / "not-running" / component)

    def kernel_name(self, component: str) -> str:
        return "/" + str(self.path(component).relative_to(self.base.parent))

    def clear_limit(self, component: str) -> None:
        """The user's own limit back (none, unless they gave the container one)."""
        limit = configured_limit(self.container_of(component))
        (self.path(component) / "memory.limit_in_bytes").write_text(str(limit))


@dataclass(frozen=True)
class AttachedMemory(CgroupMemory):
    """The run's cgroups outlive an OOM kill; the engine removes a container's as soon as
    its processes are gone (a local run saw it gone within 0.1 s of the kill). So the
    kills are counted in the kernel log, by the cgroup's name, which stays the same for
    every incarnation of the container: one summary line per kill, as the cgroup's own
    ``oom_kill`` counter counts them."""

    def oom_kills(self, name: str) -> int:
        self._require_controlled(name, f"reading {name}'s OOM kills")
        return kills_in(kernel_log(), self.cgroups.kernel_name(name))


def attached_memory(container_of: Callable[[str], Container], is_node: Callable[[str], bool],
                    paths: Paths, run_id: str) -> AttachedMemory:
    """Memory control of the project's nodes (``is_node``) through their own cgroups;
    a helper run inside one is logged under ``paths`` and tagged with ``run_id``."""
    cgroups = ContainerCgroups(run_id, container_of=container_of)
    return AttachedMemory(cgroups, paths, is_node, runtime=RUNTIME)
