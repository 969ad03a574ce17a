"""The scheduler's runner: each fire time runs ``llm-drill gameday run PLAN`` as a child
process (its own pytest session, stack and abort watch); its exit code is the outcome."""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.gameday.day import EXIT_CODES
from harness.gameday.run import FAILED

OUTCOMES = {code: outcome for outcome, code in EXIT_CODES.items()}  # else: failed


def outcome_of_exit(code: int) -> str:
    return OUTCOMES.get(code, FAILED)


@dataclass
class ChildRun:
    proc: subprocess.Popen[bytes]

    def poll(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else outcome_of_exit(code)

    def interrupt(self) -> None:
        """As Ctrl-C would: the game day reverts its faults and writes what it has."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)


@dataclass
class ProcessRunner:
    """Starts plans, relative to ``folder`` (the schedules file's), under ``home``."""

    folder: Path
    home: Path
    log_dir: Path
    python: str = sys.executable

    def __post_init__(self) -> None:
        self.started: list[ChildRun] = []

    def argv(self, plan: str) -> list[str]:
        return [self.python, "-m", "harness.cli", "--home", str(self.home), "gameday", "run",
                str(self.folder / plan)]

    def __call__(self, plan: str, scheduled_at: float) -> ChildRun:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{Path(plan).stem}-{int(scheduled_at)}.log"
        with log.open("ab") as out:
            run = ChildRun(subprocess.Popen(self.argv(plan), stdout=out,
                                            stderr=subprocess.STDOUT, cwd=self.folder))
        self.started.append(run)
        return run

    def interrupt_all(self, within: float) -> None:
        """Interrupt every run still going and wait for each (bounded), then kill."""
        for run in self.started:
            run.interrupt()
        for run in self.started:
            try:
                run.proc.wait(timeout=within)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()
