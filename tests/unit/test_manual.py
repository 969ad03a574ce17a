"""The desk a manual game day shares with its session: each fault waits for its go, and
the people's timings come out of the log in seconds after the fault was applied."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.faults.base import FaultBase
from harness.manual import (
    APPLIED,
    CUE,
    DETECTED,
    GO,
    MANUAL_DIR_ENV,
    MITIGATED,
    REVERTED,
    RUNBOOK,
    Desk,
    Event,
    desk_from_env,
    people_measurements,
)
from harness.waits import Wait
from tests.fakes import FakeClock


class Touch(FaultBase):
    """A fault whose apply and revert leave marks the test can see."""

    def __init__(self, marks: list[str]) -> None:
        self.marks = marks

    def describe(self) -> str:
        return "touch"

    def _apply(self) -> None:
        self.marks.append("applied")

    def _revert(self) -> None:
        self.marks.append("reverted")


def test_a_cue_waits_until_the_facilitator_says_go(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    assert desk.pending() is None and desk.go("nobody") is None
    seq = desk.cue("SIGKILL node1", "drills/test_x.py::test_x")
    assert desk.pending() == Event(CUE, desk.events()[0].at, seq, "drills/test_x.py::test_x",
                                   "SIGKILL node1")
    go = desk.go("alice")
    assert go is not None and go.seq == seq and go.by == "alice"
    assert desk.pending() is None
    assert desk.wait_for_go(seq) == go
    assert desk.cue("next", "") == seq + 1


def test_the_newest_applied_fault_not_reverted_is_the_one_reverted(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    assert desk.last_applied() == 0
    desk.note(APPLIED, seq=1)
    desk.note(REVERTED, seq=1)
    desk.note(APPLIED, seq=2)
    assert desk.last_applied() == 2


def test_without_the_variable_there_is_no_desk(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.delenv(MANUAL_DIR_ENV, raising=False)
    assert desk_from_env() is None
    marks: list[str] = []
    with Touch(marks):
        assert marks == ["applied"]
    assert marks == ["applied", "reverted"]
    monkeypatch.setenv(MANUAL_DIR_ENV, str(tmp_path))
    desk = desk_from_env()
    assert desk is not None and desk.folder == tmp_path


def test_a_fault_is_applied_only_after_the_go_and_both_ends_are_logged(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MANUAL_DIR_ENV, str(tmp_path))
    desk, marks = Desk(tmp_path), list[str]()
    done = threading.Event()

    def drill() -> None:
        with Touch(marks):
            pass
        done.set()

    worker = threading.Thread(target=drill)
    worker.start()
    Wait(within=10, interval=0.02).until_true("the fault's cue", lambda: desk.pending()
                                              is not None)
    assert marks == []  # cued, waiting: nothing applied yet
    desk.go("facilitator")
    worker.join(timeout=10)
    assert done.is_set() and marks == ["applied", "reverted"]
    assert [(e.kind, e.seq) for e in desk.events()] == [(CUE, 1), (GO, 1), (APPLIED, 1),
                                                        (REVERTED, 1)]


def test_the_people_are_timed_from_the_fault_and_early_acks_count_for_nothing(
        tmp_path: Path) -> None:
    clock = FakeClock(start=1000.0, wall_offset=0.0)
    desk = Desk(tmp_path, now=clock.wall)
    desk.note(DETECTED, by="early")        # before the drill's fault: not a detection
    desk.cue("SIGKILL node1", "t")
    clock.advance(4.0)
    desk.go("facilitator")
    desk.note(APPLIED, seq=1)
    clock.advance(12.5)
    desk.note(RUNBOOK, what="NodeDown")
    clock.advance(2.5)
    desk.note(DETECTED, by="alice")
    desk.note(RUNBOOK, what="NodeDown")    # opened again: the first opening counts
    clock.advance(30.0)
    desk.note(MITIGATED, by="bob")
    assert people_measurements(desk.events(), since=999.0) == {
        "facilitator_wait_s": 4.0, "runbook_opened_s.NodeDown": 12.5,
        "human_detected_s": 15.0, "human_mitigated_s": 45.0}
    assert people_measurements(desk.events(), since=clock.wall() + 1) == {}
