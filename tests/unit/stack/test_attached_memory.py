"""An attached project's node: its memory cgroup found from its main pid, the cap lifted
back to the limit the user gave the container (the engine's record), never to none."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from harness.stack.attached_memory import (
    NO_LIMIT,
    ContainerCgroups,
    configured_limit,
    memory_cgroup_of,
)


@dataclass
class FakeContainer:
    """What the cgroups read of a container: its main pid and the user's limit, as the
    engine's inspect gives them."""

    pid: int
    memory: int = 0

    @property
    def attrs(self) -> dict[str, Any]:
        return {"State": {"Pid": self.pid}, "HostConfig": {"Memory": self.memory}}

    def reload(self) -> None:
        """The attributes are read fresh every time."""


def own_memory_cgroup() -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path.lstrip("/")
    raise AssertionError("this host has no cgroup v1 memory controller")


def cgroups_of(container: FakeContainer, hierarchy: Path) -> ContainerCgroups:
    return ContainerCgroups("run", base=hierarchy / "llm-drill",
                            container_of=lambda _: cast(Any, container))


def test_a_pids_memory_cgroup_is_read_from_proc(tmp_path: Path) -> None:
    assert memory_cgroup_of(os.getpid(), tmp_path) == tmp_path / own_memory_cgroup()


def test_a_process_gone_has_no_cgroup(tmp_path: Path) -> None:
    assert memory_cgroup_of(2**22 + 1, tmp_path) is None  # above pid_max's ceiling


def test_no_limit_from_the_user_reads_as_none() -> None:
    container = FakeContainer(pid=1)
    assert configured_limit(cast(Any, container)) == NO_LIMIT
    container.memory = 512 * 2**20
    assert configured_limit(cast(Any, container)) == 512 * 2**20


def test_a_container_that_stopped_keeps_the_last_cgroup_found(tmp_path: Path) -> None:
    container = FakeContainer(pid=os.getpid())
    cgroups = cgroups_of(container, tmp_path)
    running = cgroups.path("node1")
    assert running == tmp_path / own_memory_cgroup()
    assert cgroups.kernel_name("node1") == "/" + own_memory_cgroup()
    container.pid = 0  # OOM-killed: the kernel's report still names that cgroup
    assert cgroups.path("node1") == running


def test_a_container_never_seen_running_has_a_path_that_does_not_exist(tmp_path: Path) -> None:
    assert not cgroups_of(FakeContainer(pid=0), tmp_path).path("node1").exists()


def test_lifting_the_cap_writes_back_the_users_limit(tmp_path: Path) -> None:
    container = FakeContainer(pid=os.getpid(), memory=768 * 2**20)
    cgroups = cgroups_of(container, tmp_path)
    cgroup = cgroups.path("node1")
    cgroup.mkdir(parents=True)
    cgroups.set_limit("node1", 300 * 2**20)
    assert (cgroup / "memory.limit_in_bytes").read_text() == str(300 * 2**20)
    cgroups.clear_limit("node1")
    assert (cgroup / "memory.limit_in_bytes").read_text() == str(768 * 2**20)
    container.memory = 0
    cgroups.clear_limit("node1")
    assert (cgroup / "memory.limit_in_bytes").read_text() == str(NO_LIMIT)
