"""The scheduler's runner starts ``llm-drill gameday run PLAN`` for real (here on a plan
whose drills need no stack) and reads the game day's outcome from its exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.gameday.runner import ChildRun, ProcessRunner, outcome_of_exit
from harness.topology import DEFAULT_STACK_FILE
from harness.waits import Probe, Wait

PLAN = """\
name: tiny
targets: [127.0.0.1]
stack: {file: stack.yaml}
drills:
  - select: test_tiny.py
abort: {error_ratio: 0.5, ttft_p95_s: 10, for_s: 30}
"""


def tiny_plan(folder: Path, body: str) -> None:
    """A plan whose one drill needs no stack; its stack file points the abort watch at a
    port nobody serves (never at a real stack this host may be running)."""
    stack = DEFAULT_STACK_FILE.read_text()
    assert "\n  port: 18090\n" in stack
    (folder / "stack.yaml").write_text(stack.replace("\n  port: 18090\n", "\n  port: 9\n"))
    (folder / "drills").mkdir()
    (folder / "drills" / "test_tiny.py").write_text(f"def test_it() -> None:\n    {body}\n")
    (folder / "tiny.yaml").write_text(PLAN)


def finished(run: ChildRun) -> str:
    def ended() -> Probe[str]:
        outcome = run.poll()
        return Probe(done=outcome is not None, value=outcome, seen=str(outcome))
    outcome = Wait(within=120, interval=0.1).until("the game day to end", ended)
    assert outcome is not None
    return outcome


@pytest.mark.parametrize(("body", "outcome"), [("pass", "passed"), ("assert False", "failed")])
def test_a_fire_time_runs_the_plan_and_reads_its_outcome(tmp_path: Path, body: str,
                                                         outcome: str) -> None:
    tiny_plan(tmp_path, body)
    runner = ProcessRunner(folder=tmp_path, home=tmp_path / "home", log_dir=tmp_path / "logs")
    assert finished(runner("tiny.yaml", 1_700_000_000.0)) == outcome
    log = (tmp_path / "logs" / "tiny-1700000000.log").read_text()
    assert f"llm-drill gameday: {outcome}" in log


def test_an_interrupted_run_says_so() -> None:
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\n"
            "print('up', flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    run = ChildRun(proc)
    assert run.poll() is None
    run.interrupt()
    assert finished(run) == "interrupted"
    proc.stdout.close()


def test_exit_codes_map_to_outcomes() -> None:
    assert [outcome_of_exit(c) for c in (0, 1, 2, 3, 130)] == [
        "passed", "failed", "failed", "aborted", "interrupted"]
