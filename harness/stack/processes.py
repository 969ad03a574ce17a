"""Process groups: start a command in its own session, find and signal its whole group.

vLLM's API server forks ``VLLM::EngineCore`` and ``VLLM::Worker``; killing only the
server orphans them. Every component therefore runs as the leader of its own
session, is tagged with ``LLM_DRILL_RUN_ID`` in its environment, and is stopped by
signalling the whole group, then anything still tagged.

Every ``Popen`` started here is waited for: :func:`reap` waits a bounded time and, if
the process still runs (a SIGKILLed vLLM can spend tens of seconds in the kernel's exit),
hands it to a reaper thread that waits for it. A ``Popen`` dropped while its process
runs raises ``ResourceWarning`` when collected and leaves a zombie.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import NotReady
from harness.waits import Probe, Wait

RUN_ID_ENV = "LLM_DRILL_RUN_ID"
COMPONENT_ENV = "LLM_DRILL_COMPONENT"

# Enter a memory cgroup before exec: memory charged before the move would stay outside.
_CGROUP_WRAPPER = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"'


@dataclass(frozen=True)
class Launch:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    cgroup_dir: Path | None = None


def spawn(launch: Launch) -> subprocess.Popen[bytes]:
    """Start ``launch`` as the leader of a new session, output appended to its log."""
    argv = launch.argv
    if launch.cgroup_dir is not None:
        argv = ("/bin/sh", "-c", _CGROUP_WRAPPER, "sh", str(launch.cgroup_dir), *argv)
    launch.log_path.parent.mkdir(parents=True, exist_ok=True)
    with launch.log_path.open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=launch.cwd,
                                env=dict(launch.env), start_new_session=True)


def reap(proc: subprocess.Popen[bytes], within: float) -> int | None:
    """Wait up to ``within`` seconds for ``proc``; its exit status, or None when it still
    runs, in which case a reaper thread waits for it (see :func:`hand_to_reaper`)."""
    try:
        return proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        hand_to_reaper(proc)
        return None


def hand_to_reaper(proc: subprocess.Popen[bytes]) -> None:
    """Let a daemon thread wait for ``proc``: it keeps the Popen until the process exits,
    then collects its status, so no ResourceWarning and no zombie whoever drops it."""
    if proc.poll() is None:
        threading.Thread(target=proc.wait, name=f"llm-drill-reap-{proc.pid}",
                         daemon=True).start()


def _pids() -> Iterable[int]:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def group_members(pgid: int) -> list[int]:
    members = []
    for pid in _pids():
        try:
            if os.getpgid(pid) == pgid and not is_zombie(pid):
                members.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def tagged_processes(run_id: str, component: str | None = None) -> list[int]:
    """Pids whose environment carries this run id (and component, if given)."""
    wanted = [f"{RUN_ID_ENV}={run_id}".encode()]
    if component is not None:
        wanted.append(f"{COMPONENT_ENV}={component}".encode())
    found = []
    for pid in _pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(item in environ for item in wanted) and not is_zombie(pid):
            found.append(pid)
    return found


def process_title(pid: int) -> str:
    """What the process calls itself (its argv, which vLLM retitles ``VLLM::EngineCore``);
    empty once it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace").strip()
    except OSError:
        return ""


def titled(pids: Iterable[int], title: str) -> tuple[int, ...]:
    """Those of ``pids`` whose title begins with ``title`` (``VLLM::EngineCore``)."""
    return tuple(pid for pid in pids if process_title(pid).startswith(title))


def _stat_after_name(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from its 3rd field (the state) on, past the name in
    parentheses (which may hold spaces); None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` (``R`` running or runnable, ``S``
    sleeping, ``T`` stopped, ``Z`` zombie...); ``?`` once it is gone."""
    fields = _stat_after_name(pid)
    return fields[0] if fields else "?"


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) ``pid`` has used so far; 0 once it is gone."""
    fields = _stat_after_name(pid)
    if not fields:
        return 0.0
    utime, stime = int(fields[11]), int(fields[12])  # stat's 14th and 15th fields
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """How much of a CPU the busiest of some processes used between two readings."""

    at: float = 0.0
    used: dict[int, float] = field(default_factory=dict)
    highest: float = 0.0  # the highest share read so far
    streak: int = 0  # readings in a row, the last included, at or above the share asked

    def share_since_last(self, pids: Iterable[int]) -> float:
        """The busiest of ``pids``' share of a CPU since the last reading (0 at the first)."""
        now, used = time.monotonic(), {pid: cpu_seconds(pid) for pid in pids}
        gained = max((used[pid] - self.used[pid] for pid in used.keys() & self.used.keys()),
                     default=0.0)
        share = gained / max(now - self.at, 1e-3)
        self.at, self.used, self.highest = now, used, max(self.highest, share)
        return share

    def readings_at_work(self, pids: Iterable[int], share: float) -> int:
        """Read again; how many readings in a row one of ``pids`` was at work: runnable
        at the reading (state ``R``: on a CPU or waiting for one, which a busy host makes
        it do often) or having used at least ``share`` of a CPU since the one before."""
        pids = tuple(pids)
        at_work = (self.share_since_last(pids) >= share
                   or any(process_state(pid) == "R" for pid in pids))
        self.streak = self.streak + 1 if at_work else 0
        return self.streak


def is_zombie(pid: int) -> bool:
    """Dead for our purposes: a zombie, gone, or exiting with its memory map already
    released (the kernel can spend tens of seconds in exit_mmap freeing a large
    vLLM worker on a VM; nothing of it runs in user space any more)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    state = next((line.split()[1] for line in status.splitlines()
                  if line.startswith("State:")), "X")
    return state in ("Z", "X") or "\nVmSize:" not in status


def signal_pids(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal a whole process group; False if it no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def terminate(pgid: int, run_id: str, component: str, grace_s: float) -> None:
    """SIGTERM the group, wait up to ``grace_s``, then SIGKILL whatever is left."""
    def remaining() -> list[int]:
        return live_processes(pgid, run_id, component)

    signal_group(pgid, signal.SIGTERM)
    signal_pids(tagged_processes(run_id, component), signal.SIGTERM)
    with contextlib.suppress(NotReady):  # past the grace period: escalate below
        Wait(within=grace_s, interval=0.1).until(
            f"{component} to exit after SIGTERM",
            lambda: Probe(done=not remaining()))
    kill_all(pgid, run_id, component)


def kill_all(pgid: int, run_id: str, component: str, within: float = 30.0) -> None:
    """SIGKILL the group and every process tagged with the component, and wait."""
    def probe() -> Probe[None]:
        left = live_processes(pgid, run_id, component)
        signal_group(pgid, signal.SIGKILL)
        signal_pids(left, signal.SIGKILL)
        return Probe(done=not left, seen=f"still alive: {left}")

    Wait(within=within, interval=0.05).until(f"{component} to die after SIGKILL", probe)


def live_processes(pgid: int, run_id: str, component: str) -> list[int]:
    """Live processes of the component: its group, and any tagged one that left it."""
    return sorted(set(group_members(pgid)) | set(tagged_processes(run_id, component)))
