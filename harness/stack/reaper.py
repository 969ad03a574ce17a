"""Tear a run down from its state file: used by ``down``, by crash cleanup, by the watchdog.

A pytest session that is SIGKILLed cannot clean up after itself, so a stack it
owns is watched by a small process in its own session: when the owner's pid
disappears, the watchdog tears the run down.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import StackError
from harness.runs import Paths, RunState, load_state, runs_dir, save_state, scratch_dir
from harness.stack.cgroups import (
    MemoryCgroups,
    other_hierarchies,
    reap_orphan_cgroups,
    remove_other_hierarchies,
)
from harness.stack.processes import (
    Launch,
    is_zombie,
    signal_pids,
    spawn,
    tagged_processes,
    terminate,
)
from harness.stack.supervisor import SUPERVISOR, SupervisorClient, supervisord_files

WATCHDOG = "watchdog"


@dataclass(frozen=True)
class Residue:
    """What is left of a run after teardown: empty lists mean nothing."""

    processes: tuple[int, ...]
    cgroups: tuple[str, ...]
    temp_dirs: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.processes and not self.cgroups and not self.temp_dirs


def stop_order(state: RunState) -> list[str]:
    """Newest first: the front door before gateways before nodes."""
    return sorted(state.components, key=lambda n: state.components[n].started_at, reverse=True)


def teardown(run_dir: Path, grace_s: float = 8.0) -> Residue:
    state = load_state(run_dir)
    if state is None:
        return Residue((), ())
    _remove_containers(run_dir, state.run_id)
    _stop_supervised(run_dir, state)
    for name in stop_order(state):
        if name not in (WATCHDOG, SUPERVISOR):
            terminate(state.components[name].pid, state.run_id, name, grace_s)
    if SUPERVISOR in state.components:  # last: nothing it supervises may be restarted
        terminate(state.components[SUPERVISOR].pid, state.run_id, SUPERVISOR, grace_s)
    _sweep(state.run_id)
    MemoryCgroups(state.run_id).remove()
    remove_other_hierarchies(state.run_id)
    save_state(run_dir, RunState(state.run_id, state.stack_file, None, {}))
    shutil.rmtree(scratch_dir(state.run_id), ignore_errors=True)
    return residue(state.run_id)


def _remove_containers(run_dir: Path, run_id: str) -> None:
    """A container run's containers, by its label, from the engine it recorded."""
    from harness.stack.container_runtime import ENGINE_FILE, remove_run_objects

    engine = run_dir / ENGINE_FILE
    if not engine.exists():
        return
    from harness.stack.engine import connect

    try:
        client = connect(engine.read_text().strip())
    except StackError:  # no engine: nothing of ours can run on it
        return
    try:
        remove_run_objects(client, run_id)
    finally:
        client.close()


def _stop_supervised(run_dir: Path, state: RunState) -> None:
    """Have supervisord stop its programs (newest first, whole groups, no restarts);
    when it cannot, the terminate-and-sweep that follows still gets every process."""
    if SUPERVISOR not in state.components:
        return
    files = supervisord_files(Paths(run_dir), state.run_id)
    client = SupervisorClient(files.socket, timeout_s=90.0)
    with contextlib.suppress(StackError):
        client.stop_all()


def _sweep(run_id: str) -> None:
    """Kill anything still tagged with the run (orphans), the watchdog last."""
    me = os.getpid()
    left = [p for p in tagged_processes(run_id) if p != me]
    signal_pids(left, signal.SIGKILL)


def residue(run_id: str) -> Residue:
    me = os.getpid()
    procs = tuple(p for p in tagged_processes(run_id) if p != me)
    root = MemoryCgroups(run_id).root
    files = tuple(str(p) for p in (scratch_dir(run_id),) if p.exists())
    groups = ([root] if root.exists() else []) + other_hierarchies(run_id)
    return Residue(procs, tuple(str(g) for g in groups), files)


def reap_stale(home: Path) -> list[str]:
    """Tear down every run whose owning process is gone, and remove the cgroups of runs
    gone with their home; returns the run ids."""
    reaped = reap_orphan_cgroups()
    base = runs_dir(home)
    if not base.is_dir():
        return reaped
    for run_dir in sorted(base.iterdir()):
        state = load_state(run_dir)
        if state and state.components and state.owner_pid and not _alive(state.owner_pid):
            teardown(run_dir)
            reaped.append(state.run_id)
    return reaped


def _alive(pid: int) -> bool:
    """True while ``pid`` names a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not is_zombie(pid)


def start_watchdog(owner_pid: int, run_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The watchdog of a run owned by ``owner_pid``: it tears the run down once the owner
    is gone (a SIGKILLed pytest session cannot clean up after itself)."""
    argv = (sys.executable, "-m", "harness.stack.reaper", "--owner", str(owner_pid),
            "--run-dir", str(run_dir))
    return spawn(Launch(argv, env, run_dir, Paths(run_dir).log(WATCHDOG)))


def watch(owner_pid: int, run_dir: Path, interval_s: float = 0.5) -> int:
    """Block until the owner dies or the run is torn down; then tear down what is left."""
    while _alive(owner_pid):
        state = load_state(run_dir)
        if state is None or not state.components:
            return 0
        time.sleep(interval_s)  # a watchdog's heartbeat, not a wait on a condition
    teardown(run_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.stack.reaper")
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    return watch(args.owner, args.run_dir)


if __name__ == "__main__":
    sys.exit(main())
