"""Drills' recovery_s: one measurement, from the fault's revert to the property holding."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import cast

import pytest

from harness.drill.probes import await_recovery, hold_fault
from harness.drill.run import DrillRun
from harness.errors import DrillFailed


@dataclass
class Verdicts:
    """The part of a DrillRun that await_recovery records into."""

    seen: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, prop: str, ok: bool, detail: str = "") -> None:
        self.seen.append((prop, ok, detail))
        if not ok:
            raise DrillFailed(prop, detail)


def test_recovery_is_timed_from_the_revert_and_the_verdict_recorded() -> None:
    drill = Verdicts()
    reverted = time.time() - 3.0
    took = await_recovery(cast(DrillRun, drill), "front door takes gateway-a back",
                          since=reverted, within=5, check=lambda: True)
    assert 3.0 <= took < 4.0
    assert drill.seen == [("front door takes gateway-a back", True,
                           f"{took:.1f}s after the fault's revert")]


def test_no_recovery_fails_the_property_with_what_was_seen() -> None:
    drill = Verdicts()
    with pytest.raises(DrillFailed):
        await_recovery(cast(DrillRun, drill), "every gateway marks the node up again",
                       since=time.time(), within=0.3, check=lambda: False,
                       seen=lambda: {"gateway-a": 0.0})
    (prop, ok, detail), = drill.seen
    assert (prop, ok) == ("every gateway marks the node up again", False)
    assert "{'gateway-a': 0.0}" in detail


def hold_for(drill: Verdicts, until_in: float, *, holds: bool, settled: bool) -> float:
    """Seconds one hold of the property took."""
    began = time.monotonic()
    hold_fault(cast(DrillRun, drill), "no request waits past the bound",
               until=time.time() + until_in, holds=lambda: holds,
               seen=lambda: f"{int(not holds)} stuck", settled=lambda: settled)
    return time.monotonic() - began


def test_a_hold_ends_once_nothing_left_can_break_its_property() -> None:
    drill = Verdicts()
    assert hold_for(drill, 30, holds=True, settled=True) < 5  # not the 30 s it was allowed
    assert drill.seen == [("no request waits past the bound", True, "0 stuck")]


def test_a_hold_that_never_settles_lasts_until_its_end() -> None:
    assert hold_for(Verdicts(), 1.2, holds=True, settled=False) >= 1.2


def test_a_hold_fails_on_its_first_broken_reading_even_if_settled() -> None:
    drill = Verdicts()
    with pytest.raises(DrillFailed):
        hold_for(drill, 30, holds=False, settled=True)
    assert drill.seen == [("no request waits past the bound", False, "1 stuck")]
