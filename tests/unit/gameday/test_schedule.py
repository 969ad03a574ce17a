"""The scheduler through simulated days (an injected clock; nothing sleeps): fire times
kept to the second, missed runs and the starting deadline, concurrency Forbid and Allow,
pause and resume, history retention, a restart after a kill, and one scheduler per plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError, HarnessError
from harness.gameday.schedule import (
    FAILED_TO_START,
    FORBIDDEN,
    INTERRUPTED,
    MISSED,
    RUNNING,
    ScheduleLocked,
    Scheduler,
    ScheduleSpec,
    load_schedules,
    load_state,
    set_paused,
)
from tests.fakes import FakeClock

MIDNIGHT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0
DAY = 24 * HOUR


@dataclass
class FakeRun:
    clock: FakeClock
    ends_at: float
    outcome: str = "passed"

    def poll(self) -> str | None:
        return self.outcome if self.clock.wall() >= self.ends_at else None


@dataclass
class FakeRunner:
    """Starts runs that take ``duration_s`` of simulated time; remembers each start."""

    clock: FakeClock
    duration_s: float = 600.0
    starts: list[tuple[float, float]] = field(default_factory=list)  # (scheduled, started)
    runs: list[FakeRun] = field(default_factory=list)
    most_at_once: int = 0

    def __call__(self, plan: str, scheduled_at: float) -> FakeRun:
        now = self.clock.wall()
        self.starts.append((scheduled_at, now))
        self.runs.append(FakeRun(self.clock, now + self.duration_s))
        going = sum(r.poll() is None for r in self.runs)
        self.most_at_once = max(self.most_at_once, going)
        return self.runs[-1]


def clock_at_midnight() -> FakeClock:
    return FakeClock(start=0.0, wall_offset=MIDNIGHT)


def spec(schedule: str = "@hourly", **changes: Any) -> ScheduleSpec:
    return ScheduleSpec(**{"name": "hourly", "plan": "plans/p.yaml", "schedule": schedule,
                           **changes})


def test_a_simulated_day_starts_every_fire_time_on_the_second(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock, duration_s=600)
    with Scheduler(spec(), runner, clock, tmp_path) as scheduler:
        scheduler.run(until=MIDNIGHT + DAY)
    assert [s for s, _ in runner.starts] == [MIDNIGHT + h * HOUR for h in range(1, 24)]
    assert max(started - scheduled for scheduled, started in runner.starts) == 0.0
    assert len(clock.slept) < 24 * (600 / 5 + 3)  # idle hours are one sleep, not polls
    state = load_state(scheduler.paths.state)
    assert state is not None and len(state.history) == 10  # the default history limit
    assert {e.status for e in state.history} == {"passed"}


def test_forbid_holds_a_fire_time_until_the_run_ends(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock, duration_s=25 * 60)  # longer than the 10-minute period
    with Scheduler(spec("*/10 * * * *", history_limit=100), runner, clock, tmp_path) as s:
        s.run(until=MIDNIGHT + HOUR)
    assert runner.most_at_once == 1
    # 00:10 runs to 00:35; 00:20 and 00:30 are due meanwhile: the newest (00:30) starts
    # when the run ends, then 00:40 waits for it (till 01:00), and so on.
    assert [(s - MIDNIGHT, t - MIDNIGHT) for s, t in runner.starts] == [
        (600, 600), (1800, 2100)]
    forbidden = [e.scheduled_at - MIDNIGHT for e in s.state.history if e.status == FORBIDDEN]
    assert forbidden == [1200, 1800, 2400, 3000]


def test_forbid_with_a_deadline_misses_what_waited_too_long(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock, duration_s=25 * 60)
    timing = spec("*/10 * * * *", starting_deadline_s=60, history_limit=100)
    with Scheduler(timing, runner, clock, tmp_path) as s:
        s.run(until=MIDNIGHT + HOUR)
    assert [s - MIDNIGHT for s, _ in runner.starts] == [600, 2400]  # 00:10, 00:40
    assert all(t - s <= 60 for s, t in runner.starts)
    missed = [e.scheduled_at - MIDNIGHT for e in s.state.history if e.status == MISSED]
    assert missed == [1200, 1800, 3000]


def test_allow_runs_side_by_side(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock, duration_s=25 * 60)
    with Scheduler(spec("*/10 * * * *", concurrency_policy="Allow"), runner, clock,
                   tmp_path) as s:
        s.run(until=MIDNIGHT + HOUR)
    assert len(runner.starts) == 5  # 00:10 .. 00:50
    assert runner.most_at_once == 3


@pytest.mark.parametrize(("deadline", "runs"), [(None, 1), (600.0, 0)])
def test_missed_while_down(tmp_path: Path, deadline: float | None, runs: int) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock)
    with Scheduler(spec(starting_deadline_s=deadline), runner, clock, tmp_path) as s:
        s.tick()
        clock.advance(5.5 * HOUR)  # the scheduler was down: five fire times passed
        events = s.tick()
    assert len(runner.starts) == runs
    assert events[0].status == MISSED
    assert events[0].detail.startswith("4 earlier fire time(s) missed")
    if deadline is None:
        assert runner.starts == [(MIDNIGHT + 5 * HOUR, MIDNIGHT + 5.5 * HOUR)]
        assert events[-1].status == RUNNING
    else:
        assert "past the starting deadline of 600s" in events[-1].detail


@pytest.mark.parametrize(("deadline", "resumed_run"), [(None, True), (600.0, False)])
def test_pause_and_resume(tmp_path: Path, deadline: float | None, resumed_run: bool) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock, duration_s=60)
    with Scheduler(spec(starting_deadline_s=deadline), runner, clock, tmp_path) as s:
        s.run(until=MIDNIGHT + 1.5 * HOUR)
        assert len(runner.starts) == 1
        set_paused(tmp_path, "hourly", True)
        s.run(until=MIDNIGHT + 4.5 * HOUR)
        assert len(runner.starts) == 1  # 02:00, 03:00, 04:00 passed while paused
        set_paused(tmp_path, "hourly", False)
        s.run(until=MIDNIGHT + 5.5 * HOUR)
    scheduled = [t - MIDNIGHT for t, _ in runner.starts]
    expected = [HOUR, 4 * HOUR, 5 * HOUR] if resumed_run else [HOUR, 5 * HOUR]
    assert scheduled == expected


def test_a_schedule_can_start_paused(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock)
    with Scheduler(spec(paused=True), runner, clock, tmp_path) as s:
        s.run(until=MIDNIGHT + 3 * HOUR)
    assert runner.starts == []


def test_a_restarted_scheduler_never_runs_a_fire_time_twice(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    runner = FakeRunner(clock, duration_s=HOUR * 2)
    first = Scheduler(spec(), runner, clock, tmp_path).__enter__()
    clock.advance(HOUR)
    assert [e.status for e in first.tick()] == [RUNNING]
    first.__exit__(None, None, None)  # killed: nothing more is written; the lock goes

    clock.advance(30)
    with Scheduler(spec(), runner, clock, tmp_path) as second:
        assert second.tick() == ()
        assert [e.status for e in second.state.history] == [INTERRUPTED]
    assert len(runner.starts) == 1


def test_one_scheduler_per_plan(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    with Scheduler(spec(), FakeRunner(clock), clock, tmp_path):
        other = spec(name="another-name")  # same plan, other schedule: refused too
        with pytest.raises(ScheduleLocked, match=r"plans/p.yaml.*already scheduled by pid"):
            Scheduler(other, FakeRunner(clock), clock, tmp_path).__enter__()
    with Scheduler(spec(), FakeRunner(clock), clock, tmp_path):  # released on exit
        pass


def test_a_runner_that_cannot_start_is_recorded(tmp_path: Path) -> None:
    clock = clock_at_midnight()

    def broken(plan: str, scheduled_at: float) -> FakeRun:
        raise HarnessError("stack lock held by another game day")

    with Scheduler(spec(), broken, clock, tmp_path) as s:
        clock.advance(HOUR)
        (event,) = s.tick()
    assert event.status == FAILED_TO_START
    assert "stack lock held" in event.detail


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "Weekly_Drill", "lowercase letters"),
    ("concurrency_policy", "Replace", "none of Forbid, Allow"),
    ("schedule", "'0 3 * *'", "five cron fields"),
    ("starting_deadline_s", -1, ">= 0"),
    ("history_limit", 0, "at least 1"),
])
def test_bad_schedules_name_file_line_and_field(tmp_path: Path, field: str, value: object,
                                                message: str) -> None:
    entry = {"name": "ok", "plan": "p.yaml", "schedule": "'@daily'", field: value}
    path = tmp_path / "schedules.yaml"
    path.write_text("schedules:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in entry.items()))
    with pytest.raises(ConfigError, match=message) as caught:
        load_schedules(path)
    assert f"{path}:2" in str(caught.value)


def test_schedule_names_are_unique(tmp_path: Path) -> None:
    path = tmp_path / "schedules.yaml"
    entry = "  - name: a\n    plan: p.yaml\n    schedule: '@daily'\n"
    path.write_text("schedules:\n" + entry + entry)
    with pytest.raises(ConfigError, match="used twice: a"):
        load_schedules(path)


def test_an_unreadable_state_is_named_and_the_lock_let_go(tmp_path: Path) -> None:
    clock = clock_at_midnight()
    scheduler = Scheduler(spec(), FakeRunner(clock), clock, tmp_path)
    scheduler.paths.state.parent.mkdir(parents=True)
    scheduler.paths.state.write_text("{half a json")
    with pytest.raises(HarnessError, match="unreadable schedule state"):
        scheduler.__enter__()
    scheduler.paths.state.unlink()
    with Scheduler(spec(), FakeRunner(clock), clock, tmp_path):  # the lock is free again
        pass
