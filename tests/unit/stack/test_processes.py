"""Process groups, escalation, orphans, the reaper: on real (tiny) processes."""

from __future__ import annotations

import gc
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import MissingDependency, PortInUse
from harness.runs import ProcRecord, RunState, save_state
from harness.stack.cgroups import MemoryCgroups
from harness.stack.preflight import check_ports_free, find_binary
from harness.stack.processes import (
    COMPONENT_ENV,
    RUN_ID_ENV,
    Launch,
    kill_all,
    reap,
    spawn,
    tagged_processes,
    terminate,
)
from harness.stack.reaper import reap_stale, residue, teardown
from harness.waits import Probe, Wait

# A parent that forks a child which escapes into its own session, like a daemon would,
# and a child that stays in the group: both must be found and killed.
TREE = (
    "import os, subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
    " start_new_session=True)\n"
    "print('tree up', flush=True)\n"
    "time.sleep(600)\n"
)
IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
               "print('up', flush=True); time.sleep(600)"


_CHILDREN: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _reap_children() -> Iterator[None]:
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        proc.kill()
        proc.wait()


def _launch(tmp_path: Path, run_id: str, component: str, code: str) -> int:
    env = dict(os.environ, **{RUN_ID_ENV: run_id, COMPONENT_ENV: component})
    log = tmp_path / f"{component}.log"
    proc = spawn(Launch((sys.executable, "-c", code), env, tmp_path, log))
    _CHILDREN.append(proc)
    Wait(within=10).until_true("process to start", lambda: bool(log.read_text()))
    return proc.pid


def _expect_tagged(run_id: str, component: str, count: int) -> None:
    Wait(within=10).until(f"{count} tagged processes", lambda: Probe(
        done=len(tagged_processes(run_id, component)) == count,
        seen=str(tagged_processes(run_id, component))))


@pytest.fixture
def run_id() -> str:
    return f"test-{secrets.token_hex(4)}"


def test_kill_all_reaches_children_that_left_the_group(tmp_path: Path, run_id: str) -> None:
    pid = _launch(tmp_path, run_id, "tree", TREE)
    _expect_tagged(run_id, "tree", 3)
    assert os.getpgid(pid) == pid  # leader of its own session
    kill_all(pid, run_id, "tree")
    assert tagged_processes(run_id, "tree") == []


def test_terminate_escalates_to_sigkill(tmp_path: Path, run_id: str) -> None:
    pid = _launch(tmp_path, run_id, "stubborn", IGNORES_TERM)
    began = time.monotonic()
    terminate(pid, run_id, "stubborn", grace_s=0.5)
    assert tagged_processes(run_id, "stubborn") == []
    assert time.monotonic() - began >= 0.5


def test_teardown_from_state_file_leaves_no_residue(tmp_path: Path, run_id: str) -> None:
    pid = _launch(tmp_path, run_id, "tree", TREE)
    _expect_tagged(run_id, "tree", 3)
    save_state(tmp_path, RunState(run_id, "stack.yaml", None,
                                  {"tree": ProcRecord(pid, time.time())}))
    left = teardown(tmp_path, grace_s=2)
    assert left.clean, left
    assert residue(run_id).clean


def test_reap_stale_tears_down_runs_whose_owner_died(tmp_path: Path, run_id: str) -> None:
    home = tmp_path / "home"
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    pid = _launch(run_dir, run_id, "tree", TREE)
    _expect_tagged(run_id, "tree", 3)
    dead_owner = _dead_pid()
    save_state(run_dir, RunState(run_id, "stack.yaml", dead_owner,
                                 {"tree": ProcRecord(pid, time.time())}))
    # other runs' orphan cgroups on this host may be reaped alongside (no process, old)
    assert run_id in reap_stale(home)
    assert residue(run_id).clean


def test_watchdog_cleans_up_after_owner_is_sigkilled(tmp_path: Path, run_id: str) -> None:
    owner = _launch(tmp_path, run_id, "owner", "import time; print('o', flush=True); "
                    "time.sleep(600)")
    pid = _launch(tmp_path, run_id, "tree", TREE)
    _expect_tagged(run_id, "tree", 3)
    save_state(tmp_path, RunState(run_id, "stack.yaml", owner,
                                  {"tree": ProcRecord(pid, time.time())}))
    env = dict(os.environ, **{RUN_ID_ENV: run_id, COMPONENT_ENV: "watchdog"})
    _CHILDREN.append(spawn(Launch(
        (sys.executable, "-m", "harness.stack.reaper", "--owner", str(owner),
         "--run-dir", str(tmp_path)), env, tmp_path, tmp_path / "watchdog.log")))
    os.kill(owner, signal.SIGKILL)
    Wait(within=15).until("the watchdog to tear the run down", lambda: Probe(
        done=residue(run_id).clean, seen=str(residue(run_id))))


def _dead_pid() -> int:
    proc = spawn(Launch((sys.executable, "-c", "pass"), dict(os.environ), Path.cwd(),
                        Path(os.devnull)))
    proc.wait()  # reaped: its pid no longer names a process
    return proc.pid


def test_port_in_use_names_the_port_and_holder() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PortInUse) as info:
            check_ports_free("127.0.0.1", [("gateway-a", port)])
    assert info.value.port == port and info.value.component == "gateway-a"
    assert f"pid {os.getpid()}" in str(info.value)


def test_missing_binary_names_the_install_command() -> None:
    with pytest.raises(MissingDependency, match="apt-get install -y nothing-here"):
        find_binary(["llm-drill-no-such-binary"], "apt-get install -y nothing-here")


@pytest.mark.skipif(not MemoryCgroups("probe").available(),
                    reason="memory cgroup v1 not writable here (needs root)")
def test_cgroups_of_a_run_are_removed_with_their_parent(run_id: str) -> None:
    cgroups = MemoryCgroups(run_id)
    others = [p for p in cgroups.base.iterdir() if p.is_dir()] if cgroups.base.exists() else []
    cgroups.create("node1")
    cgroups.remove()
    assert not cgroups.root.exists()
    assert cgroups.base.exists() == bool(others)


def _spawn_in_fake_cgroup(tmp_path: Path, code: str) -> subprocess.Popen[bytes]:
    """Through the cgroup-placing /bin/sh wrapper (a plain directory stands in for the
    cgroup: the wrapper only writes its pid to ``cgroup.procs``)."""
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    launch = Launch((sys.executable, "-c", code), dict(os.environ), tmp_path,
                    tmp_path / "wrapped.log", cgroup)
    proc = spawn(launch)
    Wait(within=10).until_true("the wrapper to enter the cgroup",
                               lambda: bool((cgroup / "cgroup.procs").read_text().strip()))
    return proc


def _gone(pid: int) -> bool:
    """Exited and reaped: not even a zombie left in /proc."""
    return not Path(f"/proc/{pid}").exists()


def test_a_process_still_running_when_dropped_is_handed_to_the_reaper(tmp_path: Path) -> None:
    proc = _spawn_in_fake_cgroup(tmp_path, "import time; time.sleep(600)")
    pid = proc.pid
    assert reap(proc, within=0.0) is None  # still running: handed over
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del proc
        gc.collect()
    os.killpg(pid, signal.SIGKILL)  # it ends after being dropped, as a slow SIGKILL does
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], \
        [str(w.message) for w in caught]
    Wait(within=10).until_true(f"pid {pid} to be reaped (no zombie)", lambda: _gone(pid))


def test_a_dropped_running_popen_warns_without_the_reaper(tmp_path: Path) -> None:
    """The control: what ``reap`` prevents is real (ResourceWarning on collection)."""
    proc = _spawn_in_fake_cgroup(tmp_path, "import time; time.sleep(600)")
    pid = proc.pid
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del proc
        gc.collect()
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_reap_returns_the_exit_status_of_a_process_that_ends_in_time(tmp_path: Path) -> None:
    proc = _spawn_in_fake_cgroup(tmp_path, "raise SystemExit(3)")
    assert reap(proc, within=10) == 3
