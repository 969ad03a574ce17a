"""A real kernel OOM kill of one node, through its memory cgroup (v1).

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
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import FaultApplyError
from harness.stack.cgroups import MemoryCgroups
from harness.stack.processes import COMPONENT_ENV, RUN_ID_ENV, Launch, spawn
from harness.waits import Probe, Wait

# The kernel's one-line summary of a kill, e.g. "[19974.713268] oom-kill:constraint=
# CONSTRAINT_MEMCG,...,oom_memcg=/llm-drill/<run>/node2,task_memcg=...,task=VLLM::Worker,
# pid=1384,uid=0". The kernel log is shared by every tenant of the kernel and is a ring
# buffer: a kill is matched by its cgroup and its timestamp, never by line position.
_OOM_KILL = re.compile(r"^\[\s*(\d+\.\d+)\] oom-kill:"
                       r".*\boom_memcg=([^,]+),.*\btask=([^,]+),pid=(\d+)")
_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")


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
    process: subprocess.Popen[bytes]

    def pop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def inflate_balloon(cgroups: MemoryCgroups, component: str, mib: int, log: Path) -> Balloon:
    env = dict(os.environ, **{RUN_ID_ENV: cgroups.run_id, COMPONENT_ENV: f"{component}-balloon"})
    argv = (sys.executable, "-m", "harness.stack.balloon", "--mib", str(mib), "--hold-s", "60")
    proc = spawn(Launch(argv, env, log.parent, log, cgroups.path(component)))
    return Balloon(proc)


def force_oom(cgroups: MemoryCgroups, component: str, headroom_mib: int, log: Path,
              within: float = 60.0) -> tuple[OOMKill, Balloon]:
    """Cap ``component`` just above its usage and push it over; return what the kernel did.

    The caller pops the balloon and clears the limit (the memory fault's revert).
    """
    if not cgroups.path(component).is_dir():
        raise FaultApplyError(f"{component} has no memory cgroup (needs root and cgroup v1)")
    before, usage = cgroups.oom_kills(component), cgroups.usage(component)
    limit = usage + headroom_mib * 2**20
    cgroups.set_limit(component, limit)
    mark_as_oom_victims(cgroups.path(component))
    kernel_log_mark = last_stamp(_kernel_log())
    # Clean file pages (mapped libraries) are reclaimed before anything is killed, so the
    # balloon may need to grow past the headroom by all of them: size it to the whole cap.
    balloon = inflate_balloon(cgroups, component, limit // 2**20, log)
    try:
        Wait(within=within, interval=0.1).until(
            f"the kernel to OOM-kill a process of {component}",
            lambda: Probe(done=cgroups.oom_kills(component) > before,
                          seen=f"oom_kill={cgroups.oom_kills(component)}"))
    except BaseException:
        balloon.pop()
        cgroups.clear_limit(component)
        raise
    pid, name = find_victim(_kernel_log(), cgroups.kernel_name(component), kernel_log_mark)
    kill = OOMKill(component, cgroups.oom_kills(component) - before, limit, usage, pid, name)
    return kill, balloon


def mark_as_oom_victims(cgroup: Path) -> None:
    """Raise oom_score_adj of every process in the cgroup to 1000 (no privilege needed)."""
    for line in (cgroup / "cgroup.procs").read_text().split():
        try:
            Path(f"/proc/{line}/oom_score_adj").write_text("1000")
        except OSError:
            continue


def _kernel_log() -> list[str]:
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.splitlines()


def last_stamp(lines: list[str]) -> float:
    """The timestamp of the kernel log's last line (0.0 for an empty log)."""
    for line in reversed(lines):
        match = _STAMP.match(line)
        if match:
            return float(match.group(1))
    return 0.0


def find_victim(lines: list[str], memcg: str, after: float) -> tuple[int | None, str]:
    """(pid, name) of the first process the kernel killed in ``memcg`` after ``after``."""
    for line in lines:
        match = _OOM_KILL.match(line)
        if match and float(match.group(1)) > after and match.group(2) == memcg:
            return int(match.group(4)), match.group(3)
    return None, "(not in the kernel log)"
