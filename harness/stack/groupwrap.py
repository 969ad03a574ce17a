"""The process-group owner each supervised program runs under.

``python -m harness.stack.groupwrap --pidfile F [--cgroup DIR] [--backoff-s S] -- argv``

supervisord watches one process per program. A vLLM node is three (the API server,
``VLLM::EngineCore``, ``VLLM::Worker``): when its API server dies, supervisord would
restart it and the old engine would live on, holding memory (DESIGN.md, "Supervisor").
This wrapper is what supervisord starts instead. It leads the program's process group,
joins the node's memory cgroup before anything is charged, becomes the child subreaper
(orphans of the group are re-parented to it), runs ``argv`` in its group and writes
the command's pid to ``--pidfile`` (the component's main process, what a fault kills).

When the command exits, the wrapper SIGKILLs every other member of its group, waits
until none is left, and exits with the command's status: killed by a signal, it dies
by the same signal. A server that exits with status 0 while nobody asked it to stop
(vLLM's API server exits cleanly once its engine died) exits with
:data:`EXIT_UNASKED`, so supervisord sees an unexpected exit and restarts it.
SIGTERM, SIGINT, SIGHUP and SIGQUIT received by the wrapper are passed to the command.

``--backoff-s``: wait that long before starting the command when this is a restart
by supervisord (the pid file of an earlier incarnation exists; the runtime removes it
before a start it asks for).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

EXIT_UNASKED = 70  # EX_SOFTWARE: the server exited on its own
_PR_SET_CHILD_SUBREAPER = 36
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _become_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _join_cgroup(cgroup: Path) -> None:
    (cgroup / "cgroup.procs").write_text(str(os.getpid()))


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.getpgid(int(entry)) == pgid and not _gone(int(entry)):
                members.append(int(entry))
        except (ProcessLookupError, PermissionError):
            continue
    return members


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status or "\nState:\tX" in status or "\nVmSize:" not in status


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            continue


def kill_rest_of_group(within_s: float = 60.0) -> list[int]:
    """SIGKILL every other member of this process group until none is left; returns
    the members that were still there at the first look."""
    pgid = os.getpgid(0)
    first = _group_members(pgid)
    deadline = time.monotonic() + within_s
    left = first
    while left and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap_children()
        time.sleep(0.05)  # the kernel frees a killed process asynchronously
        left = _group_members(pgid)
    _reap_children()
    return first


def _exit_like(status: int, asked_to_stop: bool) -> None:
    """Exit as the command did (``status`` as Popen reports it)."""
    sys.stdout.flush()
    if status < 0:
        with contextlib.suppress(OSError, ValueError):  # SIGKILL/SIGSTOP have no handler
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        time.sleep(1)  # SIGKILL/SIGTERM take effect at once; a stop signal does not exit
        os._exit(128 - status)
    os._exit(EXIT_UNASKED if status == 0 and not asked_to_stop else status)


#: What the pipe to supervisord may hold of a program's output while supervisord, busy
#: or starved of CPU, has not read it yet (Linux's default is 64 KiB).
STDOUT_PIPE_BYTES = 16 * 1024 * 1024


def widen_stdout_pipe(fd: int = 1, size: int = STDOUT_PIPE_BYTES) -> int | None:
    """Let the pipe on ``fd`` hold ``size`` bytes (or the system's most for an unprivileged
    process); returns its size, None when ``fd`` is no pipe. HAProxy writes its log
    without blocking and drops each line the pipe has no room for: a surge's front-door
    log lost 6 of 443 requests' lines at 64 KiB, the lines the drills judge it by."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        for wanted in (size, int(Path("/proc/sys/fs/pipe-max-size").read_text())):
            with contextlib.suppress(OSError):
                return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, wanted)
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except OSError:
        return None


def run(argv: list[str], pidfile: Path, cgroup: Path | None, backoff_s: float) -> None:
    if cgroup is not None:
        _join_cgroup(cgroup)
    _become_subreaper()
    widen_stdout_pipe()
    if backoff_s > 0 and pidfile.exists():
        time.sleep(backoff_s)  # the restart policy's backoff, not a wait on a condition
    asked: list[int] = []
    child = subprocess.Popen(argv)  # same process group: the wrapper leads it

    def forward(signum: int, _frame: FrameType | None) -> None:
        asked.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    tmp = pidfile.with_name(pidfile.name + ".tmp")
    tmp.write_text(str(child.pid))
    tmp.replace(pidfile)
    status = child.wait()
    kill_rest_of_group()
    print(f"groupwrap: {argv[0]} (pid {child.pid}) exited with {status}; group reaped",
          flush=True)
    _exit_like(status, bool(asked))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.stack.groupwrap")
    parser.add_argument("--pidfile", type=Path, required=True)
    parser.add_argument("--cgroup", type=Path)
    parser.add_argument("--backoff-s", type=float, default=0.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")
    if os.getpgid(0) != os.getpid():
        os.setpgid(0, 0)  # supervisord already made us a group leader; a shell may not
    run(command, args.pidfile, args.cgroup, args.backoff_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
