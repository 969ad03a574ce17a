"""One breakage check: the positive control first, then the drill on the broken stack."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from drills.catalogue import Drill, DrillsConfig
from harness.drill import DrillRun, LoadExporter, Stack
from harness.drill.journal import JOURNAL_DIR, read_journal
from harness.errors import HarnessError

RunDrill = Callable[[Drill], None]
Breakage = Callable[[], AbstractContextManager[object]]
Shorten = Callable[[DrillsConfig], DrillsConfig]


def unchanged(config: DrillsConfig) -> DrillsConfig:
    return config


@dataclass(frozen=True)
class Sensitivity:
    stack: Stack
    config: DrillsConfig
    exporter: LoadExporter
    session_started_at: float
    breakage_name: str  # the test's: each broken run keeps a journal of its own

    def expect_red(self, drill: str, run: RunDrill, breakage: Breakage,
                   fails_on: str, shorten: Shorten = unchanged) -> None:
        """``run`` passes as ``drill`` on the healthy stack (the control), then fails
        with a message matching ``fails_on`` while ``breakage`` is applied.

        ``shorten`` may cut the broken run's size (fewer waves of the same load), never
        its bounds: the same judgement must turn red on less evidence, which is the
        harder test, and CI's time goes to the drills' own runs."""
        self.prove_control(drill, run)
        with breakage(), pytest.raises(HarnessError, match=fails_on), \
                self._open(f"broken_{drill}__{self.breakage_name}",
                           shorten(self.config)) as broken:
            run(broken)

    def prove_control(self, drill: str, run: RunDrill) -> None:
        """The drill passed on this session's healthy stack: its journal says so, or it
        runs now as ``control_<drill>`` (a failure here fails the breakage test: a drill
        that is red on a healthy stack proves nothing by turning red on a broken one). The
        control keeps a journal of its own: the drill's run, failed or not, stays as
        evidence."""
        if any(passed_since(self.stack.run_dir, name, self.session_started_at)
               for name in (drill, control_name(drill))):
            return
        with self._open(control_name(drill), self.config) as control:
            run(control)

    def _open(self, name: str, config: DrillsConfig) -> DrillRun[DrillsConfig]:
        return DrillRun.open(name, self.stack, config, self.exporter)


def control_name(drill: str) -> str:
    return f"control_{drill}"


def passed_since(run_dir: Path, drill: str, since: float) -> bool:
    """``drill``'s journal in ``run_dir`` says it passed, in a run started after ``since``."""
    path = run_dir / JOURNAL_DIR / f"{drill}.json"
    if not path.is_file():
        return False
    journal = read_journal(path)
    return journal.outcome == "passed" and journal.started_at >= since
