"""The positive control counts only a pass recorded in this session."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.drill.journal import Journal, write_journal
from tests.breakage.sensitivity import passed_since

SESSION = 1_000.0


def journal(outcome: str, started_at: float) -> Journal:
    return Journal(drill="oom_caps", run_id="r", started_at=started_at,
                   ended_at=started_at + 5, outcome=outcome)


@pytest.mark.parametrize(("outcome", "started_at", "counts"), [
    ("passed", SESSION + 1, True),
    ("passed", SESSION - 1, False),      # an earlier session's pass on an attached stack
    ("failed", SESSION + 1, False),
    ("inconclusive", SESSION + 1, False),
])
def test_a_control_is_a_pass_in_this_session(tmp_path: Path, outcome: str,
                                             started_at: float, counts: bool) -> None:
    write_journal(journal(outcome, started_at), tmp_path)
    assert passed_since(tmp_path, "oom_caps", SESSION) is counts


def test_no_journal_is_no_control(tmp_path: Path) -> None:
    assert not passed_since(tmp_path, "oom_caps", SESSION)
