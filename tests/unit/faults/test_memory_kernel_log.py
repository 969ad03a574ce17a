"""Reading an OOM kill's victim out of a kernel log shared with other tenants."""

from __future__ import annotations

from pathlib import Path

from harness.faults.memory import OOMKill, OOMObserved
from harness.stack.cgroups import MemoryCgroups
from harness.stack.kernel_log import find_victim, kills_in, last_stamp

OURS = "/llm-drill/run-a/node2"


def kill_line(stamp: float, memcg: str, task: str, pid: int) -> str:
    return (f"[{stamp:12.6f}] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
            f"mems_allowed=0,oom_memcg={memcg},task_memcg={memcg},task={task},pid={pid},uid=0")


LOG = [
    "[  100.000001] python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0",
    kill_line(100.2, OURS, "VLLM::Worker", 11),           # an earlier kill of ours
    kill_line(200.1, "/llm-drill/run-b/node2", "VLLM::Worker", 22),  # another tenant's
    "[  200.300000] Memory cgroup out of memory: Killed process 33 (VLLM::Worker)",
    kill_line(200.4, OURS, "VLLM::Worker", 33),
    kill_line(200.5, OURS, "python3", 44),                # the rest of the node after it
]


def test_the_first_kill_in_our_cgroup_after_the_mark_is_the_victim() -> None:
    assert find_victim(LOG, OURS, after=150.0) == (33, "VLLM::Worker")


def test_kills_before_the_mark_do_not_count() -> None:
    assert find_victim(LOG, OURS, after=200.45) == (44, "python3")
    assert find_victim(LOG, OURS, after=300.0) == (None, "(not in the kernel log)")


def test_a_rotated_ring_buffer_still_finds_the_kill_by_time() -> None:
    rotated = LOG[3:]  # the log kept its length but dropped the oldest lines
    assert find_victim(rotated, OURS, after=last_stamp(LOG[:3])) == (33, "VLLM::Worker")


def test_last_stamp_skips_unstamped_lines_and_is_zero_for_an_empty_log() -> None:
    assert last_stamp([*LOG, "a continuation line"]) == 200.5
    assert last_stamp([]) == 0.0


def test_the_kernel_names_a_cgroup_from_the_hierarchy_mount() -> None:
    cgroups = MemoryCgroups("run-a", base=Path("/sys/fs/cgroup/memory/llm-drill"))
    assert cgroups.kernel_name("node2") == OURS


def _observed(victim: int | None, node_pids: tuple[int, ...]) -> OOMObserved:
    kill = OOMKill("node2", 1, 2**30, 2**29, victim, "VLLM::Worker")
    return OOMObserved(kill=kill, node_pids=node_pids)


def test_the_victim_must_be_one_of_the_nodes_own_processes() -> None:
    assert _observed(33, (31, 32, 33)).victim_was_the_node
    assert not _observed(44, (31, 32, 33)).victim_was_the_node  # e.g. the balloon
    assert not _observed(None, (31, 32, 33)).victim_was_the_node  # not in the kernel log
    assert not _observed(33, ()).victim_was_the_node  # the node's processes unknown


def test_kills_are_counted_by_their_cgroup_alone() -> None:
    assert kills_in(LOG, OURS) == 3
    assert kills_in(LOG, "/elsewhere") == 0
    assert kills_in([], OURS) == 0
