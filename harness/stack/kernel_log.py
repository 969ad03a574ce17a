"""What the kernel log says of OOM kills: the victim of a kill, and how many kills a
memory cgroup has seen.

The kernel's one-line summary of a kill, e.g. "[19974.713268] oom-kill:constraint=
CONSTRAINT_MEMCG,...,oom_memcg=/llm-drill/<run>/node2,task_memcg=...,task=VLLM::Worker,
pid=1384,uid=0". The kernel log is shared by every tenant of the kernel and is a ring
buffer: a kill is matched by its cgroup and its timestamp, never by line position.
"""

from __future__ import annotations

import re
import subprocess

_OOM_KILL = re.compile(r"^\[\s*(\d+\.\d+)\] oom-kill:"
                       r".*\boom_memcg=([^,]+),.*\btask=([^,]+),pid=(\d+)")
_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")


def kernel_log() -> list[str]:
    """The kernel log's lines (``dmesg``); none when it cannot be read."""
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


def kills_in(lines: list[str], memcg: str) -> int:
    """How many OOM kills the log reports in ``memcg`` (one summary line each)."""
    return sum(1 for line in lines
               if (match := _OOM_KILL.match(line)) and match.group(2) == memcg)
