"""The run's supervisor on a real supervisord and tiny processes: supervisord restarts a
program whose main process is SIGKILLed, the group wrapper leaves nothing of the old
incarnation, a stop asked through the API is not restarted, the policy ``never`` leaves it
dead, and the watchdog of a SIGKILLed owner leaves neither supervisord nor anything it
supervised. Needs supervisord (the stack's extra), not the stack."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.render.supervisor import Program, SupervisordFiles, render_supervisord
from harness.runs import Paths, ProcRecord, RunState, save_state
from harness.stack.preflight import find_binary
from harness.stack.processes import (
    COMPONENT_ENV,
    RUN_ID_ENV,
    Launch,
    group_members,
    is_zombie,
    kill_all,
    reap,
    signal_pids,
    spawn,
    tagged_processes,
)
from harness.stack.reaper import WATCHDOG, residue
from harness.stack.supervisor import SUPERVISOR, SupervisorClient, gave_up, supervisord_files
from harness.topology import RestartPolicy
from harness.waits import Probe, Wait

# A main process that forks a helper into its own group (like VLLM::EngineCore).
PROGRAM = ("import subprocess, sys, time; "
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
           "time.sleep(600)")


def _alive(pid: int) -> bool:
    return not is_zombie(pid)


def _program(tmp: Path, name: str, policy: RestartPolicy, run_id: str) -> Program:
    pidfile = tmp / f"{name}.pid"
    command = (sys.executable, "-m", "harness.stack.groupwrap", "--pidfile", str(pidfile),
               "--", sys.executable, "-c", PROGRAM)
    env = ((RUN_ID_ENV, run_id), (COMPONENT_ENV, name),
           ("PYTHONPATH", os.environ.get("PYTHONPATH", "")))
    return Program(name, command, env, tmp / f"{name}.log", tmp, policy, 1)


class Supervised:
    def __init__(self, tmp: Path, run_id: str) -> None:
        self.tmp, self.run_id = tmp, run_id
        self.client = SupervisorClient(tmp / "s.sock")

    def main_pid(self, name: str) -> int:
        def probe() -> Probe[int]:
            info = self.client.info(name)
            try:
                pid = int((self.tmp / f"{name}.pid").read_text())
            except (OSError, ValueError):
                return Probe(done=False, seen="no pid file")
            ok = info.running and _alive(pid) and os.getpgid(pid) == info.pid
            return Probe(done=ok, value=pid, seen=f"{info.state} pid {pid}")
        pid = Wait(within=15, interval=0.05).until(f"{name}'s main process", probe)
        assert pid is not None
        return pid


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    run_id = f"test-{secrets.token_hex(4)}"
    files = SupervisordFiles(tmp_path / "s.sock", tmp_path / "s.pid", tmp_path / "s.log")
    programs = [_program(tmp_path, "restarts", RestartPolicy(), run_id),
                _program(tmp_path, "stays-dead", RestartPolicy(policy="never"), run_id)]
    conf = tmp_path / "supervisord.conf"
    conf.write_text(render_supervisord(files, programs))
    supervisord = find_binary(["supervisord"], "pip install supervisor")
    env = dict(os.environ, **{RUN_ID_ENV: run_id, COMPONENT_ENV: "supervisord"})
    proc = subprocess.Popen([supervisord, "-n", "-c", str(conf)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    subject = Supervised(tmp_path, run_id)
    try:
        Wait(within=20, interval=0.1).until_true("supervisord to answer",
                                                 subject.client.reachable)
        yield subject
    finally:
        proc.send_signal(signal.SIGTERM)
        assert reap(proc, within=30) is not None
        for name in ("restarts", "stays-dead"):
            kill_all(proc.pid, run_id, name, within=10)


def test_a_killed_main_process_is_restarted_and_its_group_reaped(
        supervised: Supervised) -> None:
    supervised.client.start("restarts")
    old = supervised.main_pid("restarts")
    old_group = os.getpgid(old)
    Wait(within=10, interval=0.05).until_true("the helper to be forked",
                                              lambda: len(group_members(old_group)) == 3)
    os.kill(old, signal.SIGKILL)
    Wait(within=15, interval=0.05).until_true(
        "a new incarnation", lambda: supervised.main_pid("restarts") != old)
    Wait(within=10, interval=0.05).until(
        "nothing of the old group to remain",
        lambda: Probe(done=not group_members(old_group), seen=str(group_members(old_group))))


def test_a_stop_through_the_api_is_not_restarted(supervised: Supervised) -> None:
    supervised.client.start("restarts")
    pid = supervised.main_pid("restarts")
    group = os.getpgid(pid)
    supervised.client.stop("restarts")
    Wait(within=15, interval=0.05).until_true(
        "the program to be stopped", lambda: supervised.client.info("restarts").state
        == "STOPPED")
    assert not group_members(group)
    assert supervised.client.info("restarts").pid == 0


def test_policy_never_leaves_a_killed_program_dead(supervised: Supervised) -> None:
    supervised.client.start("stays-dead")
    pid = supervised.main_pid("stays-dead")
    Wait(within=10, interval=0.05).until_true(  # past startsecs: a start that died is retried
        "the program to be up", lambda: supervised.client.info("stays-dead").state == "RUNNING")
    group = os.getpgid(pid)
    os.kill(pid, signal.SIGKILL)
    Wait(within=15, interval=0.05).until_true(
        "supervisord to see the exit", lambda: supervised.client.info("stays-dead").state
        == "EXITED")
    assert not group_members(group)
    assert gave_up(supervised.client.info("stays-dead"), restarts=False) is not None


def test_a_killed_program_under_on_failure_is_never_given_up(supervised: Supervised) -> None:
    """Every state supervisord shows between the kill and the new incarnation (EXITED,
    BACKOFF, STARTING) reads as "may yet restart" under a restart policy."""
    supervised.client.start("restarts")
    old = supervised.main_pid("restarts")
    os.kill(old, signal.SIGKILL)

    def back() -> bool:
        info = supervised.client.info("restarts")
        assert gave_up(info, restarts=True) is None, info
        return supervised.main_pid("restarts") != old
    Wait(within=15, interval=0.01).until_true("a new incarnation", back)


def test_a_sigkilled_owner_leaves_no_supervisord_and_nothing_it_supervised(
        tmp_path: Path) -> None:
    """The watchdog's teardown of a run whose owner was SIGKILLed: supervisord is told to
    stop its programs (so it restarts nothing), then goes itself; nothing tagged remains."""
    run_id = f"test-{secrets.token_hex(4)}"
    paths = Paths(tmp_path)
    paths.log_dir.mkdir()
    files = supervisord_files(paths, run_id)
    files.socket.parent.mkdir()  # the run's scratch dir: teardown removes it
    conf = tmp_path / "supervisord.conf"
    conf.write_text(render_supervisord(files, [_program(tmp_path, "restarts", RestartPolicy(),
                                                        run_id)]))
    tagged = dict(os.environ, **{RUN_ID_ENV: run_id})
    started: list[subprocess.Popen[bytes]] = []

    def launch(component: str, argv: tuple[str, ...]) -> subprocess.Popen[bytes]:
        proc = spawn(Launch(argv, {**tagged, COMPONENT_ENV: component}, tmp_path,
                            tmp_path / f"{component}.out"))
        started.append(proc)
        return proc

    try:
        owner = launch("owner", (sys.executable, "-c", "import time; time.sleep(600)"))
        supervisord = launch(SUPERVISOR, (find_binary(["supervisord"], "pip install supervisor"),
                                          "-n", "-c", str(conf)))
        client = SupervisorClient(files.socket)
        Wait(within=20, interval=0.1).until_true("supervisord to answer", client.reachable)
        client.start("restarts")
        Wait(within=15, interval=0.05).until_true(
            "the program and its helper to run",
            lambda: len(tagged_processes(run_id, "restarts")) == 3)  # wrapper, main, helper
        save_state(tmp_path, RunState(run_id, "stack.yaml", owner.pid,
                                      {SUPERVISOR: ProcRecord(supervisord.pid, time.time())}))
        started.append(launch(WATCHDOG, (sys.executable, "-m", "harness.stack.reaper",
                                         "--owner", str(owner.pid), "--run-dir",
                                         str(tmp_path))))
        owner.kill()
        Wait(within=60, interval=0.1).until("the watchdog to tear the run down", lambda: Probe(
            done=residue(run_id).clean, seen=str(residue(run_id))))
        assert client.reachable() is False
    finally:
        for proc in started:
            proc.kill()
            reap(proc, within=10)
        signal_pids(tagged_processes(run_id), signal.SIGKILL)
        shutil.rmtree(files.socket.parent, ignore_errors=True)
