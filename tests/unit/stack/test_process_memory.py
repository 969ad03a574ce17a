"""The process runtime's memory capability, on a cgroup tree made of plain files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import StackError, UnknownComponent, Unsupported
from harness.runs import Paths
from harness.stack.cgroups import MemoryCgroups, orphan_run_ids
from harness.stack.process_memory import CgroupMemory
from harness.stack.processes import COMPONENT_ENV, is_zombie
from harness.waits import Wait

UNLIMITED_V1 = "9223372036854771712"
NODES = {"node1": True, "webhook": False}


def has_cgroup(name: str) -> bool:
    if name not in NODES:
        raise UnknownComponent(name, tuple(NODES))
    return NODES[name]


@pytest.fixture
def cgroups(tmp_path: Path) -> MemoryCgroups:
    groups = MemoryCgroups("run-x", base=tmp_path / "memory" / "llm-drill")
    node = groups.create("node1")
    (node / "memory.usage_in_bytes").write_text("1048576\n")
    (node / "memory.limit_in_bytes").write_text(UNLIMITED_V1 + "\n")
    (node / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (node / "cgroup.procs").write_text("")
    return groups


@pytest.fixture
def memory(cgroups: MemoryCgroups, tmp_path: Path) -> CgroupMemory:
    return CgroupMemory(cgroups, Paths(tmp_path / "run"), has_cgroup)


def test_it_controls_only_components_with_a_cgroup(memory: CgroupMemory) -> None:
    assert memory.controls("node1")
    assert not memory.controls("webhook")
    with pytest.raises(UnknownComponent):
        memory.controls("nope")


def test_reads_come_from_the_cgroup(memory: CgroupMemory) -> None:
    assert memory.usage("node1") == 1048576
    assert memory.oom_kills("node1") == 2
    assert memory.limit("node1") is None, "v1 reads 'no limit' as a huge number"
    assert memory.kernel_name("node1") == "/llm-drill/run-x/node1"


def test_a_cap_reads_back_and_clears(memory: CgroupMemory) -> None:
    memory.set_limit("node1", 5 * 2**20)
    assert memory.limit("node1") == 5 * 2**20
    memory.clear_limit("node1")
    assert memory.limit("node1") is None
    memory.clear_limit("node1")  # idempotent


@pytest.mark.parametrize("call", ["usage", "limit", "oom_kills", "clear_limit", "kernel_name"])
def test_a_component_without_a_cgroup_is_unsupported(memory: CgroupMemory, call: str) -> None:
    with pytest.raises(Unsupported, match=r"webhook.*memory control.*process") as caught:
        getattr(memory, call)("webhook")
    assert caught.value.capability == "memory control"


def test_a_cgroup_not_created_yet_is_a_stack_error_but_clearing_is_fine(
        cgroups: MemoryCgroups, tmp_path: Path) -> None:
    memory = CgroupMemory(cgroups, Paths(tmp_path / "run"), lambda name: True)
    with pytest.raises(StackError, match="never started"):
        memory.usage("node2")
    memory.clear_limit("node2")


def test_a_refused_cap_is_a_stack_error_naming_the_file(memory: CgroupMemory,
                                                        cgroups: MemoryCgroups) -> None:
    target = cgroups.path("node1") / "memory.limit_in_bytes"
    target.unlink()
    target.mkdir()  # writing fails like the kernel's EBUSY would
    with pytest.raises(StackError, match=r"memory\.limit_in_bytes"):
        memory.set_limit("node1", 4096)


def test_processes_in_the_cgroup_become_the_preferred_oom_victims(
        memory: CgroupMemory, cgroups: MemoryCgroups) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (cgroups.path("node1") / "cgroup.procs").write_text(f"{child.pid}\n")
        memory.prefer_as_oom_victim("node1")
        assert Path(f"/proc/{child.pid}/oom_score_adj").read_text().strip() == "1000"
    finally:
        child.kill()
        child.wait()


def test_a_helper_runs_inside_the_cgroup_tagged_and_stops(memory: CgroupMemory,
                                                          cgroups: MemoryCgroups) -> None:
    helper = memory.run_inside("node1", (sys.executable, "-c", "import time; time.sleep(30)"),
                               "node1-helper")
    pid = helper.process.pid
    try:
        Wait(within=5, interval=0.05).until_true(
            "the helper to enter the cgroup",
            lambda: str(pid) in (cgroups.path("node1") / "cgroup.procs").read_text())
        # a shell joins the cgroup, then execs the command: while the exec replaces it,
        # its environment reads empty (a CI run read it there)
        Wait(within=5, interval=0.05).until_true(
            "the helper to run its command", lambda: bool(environ_of(pid)))
        assert f"{COMPONENT_ENV}=node1-helper".encode() in environ_of(pid)
    finally:
        helper.stop()
    assert is_zombie(pid) or not os.path.exists(f"/proc/{pid}")
    helper.stop()  # idempotent


def test_a_run_whose_cgroups_hold_no_process_and_are_old_is_an_orphan(
        cgroups: MemoryCgroups) -> None:
    made = cgroups.root.stat().st_mtime
    assert orphan_run_ids(cgroups.base, older_than_s=60, now=made + 61) == ["run-x"]
    assert orphan_run_ids(cgroups.base, older_than_s=60, now=made + 30) == [], \
        "a run being brought up has empty cgroups for a moment"


def test_a_run_with_a_process_in_any_cgroup_is_no_orphan(cgroups: MemoryCgroups) -> None:
    (cgroups.path("node1") / "cgroup.procs").write_text("4242\n")
    made = cgroups.root.stat().st_mtime
    assert orphan_run_ids(cgroups.base, older_than_s=60, now=made + 600) == []


def test_no_cgroup_hierarchy_means_no_orphans(tmp_path: Path) -> None:
    assert orphan_run_ids(tmp_path / "absent") == []


def environ_of(pid: int) -> list[bytes]:
    """The process's environment entries (none while an exec replaces it)."""
    return [entry for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if entry]
