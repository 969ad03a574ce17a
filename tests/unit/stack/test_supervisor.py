"""The supervisor's rendered programs follow the restart policy; the group wrapper reports
an unasked clean exit as a failure, dies by its command's signal and leaves nothing of its
group. (supervisord itself: tests/integration/test_supervisor_real.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.render.supervisor import Program, SupervisordFiles, render_supervisord
from harness.stack.groupwrap import EXIT_UNASKED
from harness.stack.processes import is_zombie
from harness.stack.supervisor import ProgramInfo, gave_up
from harness.topology import RestartPolicy


def _program(tmp: Path, name: str, policy: RestartPolicy) -> Program:
    command = (sys.executable, "-m", "harness.stack.groupwrap", "--", "true")
    return Program(name, command, (), tmp / f"{name}.log", tmp, policy, 1)


def test_the_rendered_program_follows_the_restart_policy(tmp_path: Path) -> None:
    files = SupervisordFiles(tmp_path / "s.sock", tmp_path / "s.pid", tmp_path / "s.log")
    on = render_supervisord(files, [_program(tmp_path, "a", RestartPolicy(max_restarts=5))])
    off = render_supervisord(files, [_program(tmp_path, "a", RestartPolicy(policy="never"))])
    assert "autorestart=unexpected" in on and "startretries=5" in on
    assert "autorestart=false" in off
    assert "autostart=false" in on and "stopasgroup=true" in on and "killasgroup=true" in on


def test_a_node_is_stopped_through_its_wrapper_alone_and_killed_as_a_group(tmp_path: Path) -> None:
    files = SupervisordFiles(tmp_path / "s.sock", tmp_path / "s.pid", tmp_path / "s.log")
    node = replace(_program(tmp_path, "node1", RestartPolicy()), stop_leader_only=True)
    rendered = render_supervisord(files, [node])
    assert "stopasgroup=false" in rendered and "killasgroup=true" in rendered


def _wrapped(tmp: Path, code: str) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "harness.stack.groupwrap", "--pidfile", str(tmp / "m.pid"),
            "--", sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, timeout=60, check=False,
                          start_new_session=True)


def test_the_wrapper_reports_a_clean_exit_nobody_asked_for_as_a_failure(
        tmp_path: Path) -> None:
    assert _wrapped(tmp_path, "import sys; sys.exit(0)").returncode == EXIT_UNASKED
    assert _wrapped(tmp_path, "import sys; sys.exit(3)").returncode == 3


def test_the_wrapper_dies_by_the_signal_that_killed_its_command(tmp_path: Path) -> None:
    done = _wrapped(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert done.returncode == -signal.SIGKILL


def test_the_wrapper_leaves_nothing_of_its_group(tmp_path: Path) -> None:
    helper = tmp_path / "helper.pid"
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(600)']); "
            f"open({str(helper)!r}, 'w').write(str(p.pid)); sys.exit(1)")
    assert _wrapped(tmp_path, code).returncode == 1
    assert is_zombie(int(helper.read_text()))



@pytest.mark.parametrize(("state", "restarts", "gives_up"), [
    ("FATAL", True, True),          # its restarts kept dying
    ("EXITED", False, True),        # autorestart=false
    ("STOPPED", True, True),        # stopped through its API
    ("EXITED", True, False),        # the moment before supervisord restarts it
    ("BACKOFF", True, False),
    ("STARTING", False, False),
    ("RUNNING", False, False),
])
def test_supervisord_gave_up_only_when_it_will_not_start_the_program(
        state: str, restarts: bool, gives_up: bool) -> None:
    reason = gave_up(ProgramInfo("node1", state, 0, 137), restarts)
    assert (reason is not None) is gives_up
    if reason is not None:
        assert "node1" in reason and state in reason
