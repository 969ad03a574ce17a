"""Schedules: game-day plans run on cron expressions, with Chaos Mesh's semantics.

- **concurrency policy** ``Forbid`` (the default): a fire time that comes while the
  previous run is still going waits for it (within the starting deadline, if any);
  ``Allow`` starts it alongside;
- **starting deadline** (``starting_deadline_s``): a fire time that could not start within
  that many seconds (the scheduler was down, paused, or forbidden) is recorded as
  missed, not run late; without a deadline a missed run starts when it can. Of several
  missed fire times only the newest is run (as Kubernetes and Chaos Mesh do);
- **pause / resume**: a ``<name>.paused`` file beside the state; fire times passed while
  paused are missed (or run on resume, when within the deadline);
- **history limit**: the schedule keeps its last N entries (the drill history keeps all);
- **one scheduler per plan**: an exclusive lock file per plan, held while running; the
  kernel drops it when the process dies, even by SIGKILL.

A fire time is marked consumed in the state file *before* its run starts, so a
scheduler killed and restarted never runs it twice (at most once, never twice); a run that
was going when its scheduler died is recorded as interrupted.

Time comes from an injected :class:`~harness.clock.Clock` (wall time for fire times, its
``sleep`` between ticks) and runs from an injected :class:`Runner`, so tests drive a
simulated day in milliseconds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

from harness.clock import Clock
from harness.config import load_yaml
from harness.errors import ConfigError, HarnessError
from harness.files import write_atomic
from harness.gameday.cron import CronError, Timing, parse_timing

FORBID, ALLOW = "Forbid", "Allow"
POLICIES = (FORBID, ALLOW)
SCHEDULES_DIR = "schedules"
RUNNING, MISSED, FORBIDDEN, INTERRUPTED = "running", "missed", "forbidden", "interrupted"
FAILED_TO_START = "failed to start"
MIN_SLEEP_S = 0.001
#: A Kubernetes CronJob's name is a DNS-1123 label of at most 52 characters.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")
DEFAULT_POLL_S = 5.0


class ScheduleLocked(HarnessError):
    """Another scheduler already runs this plan."""


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule, as written in a schedules file."""

    name: str
    plan: str
    schedule: str  # five cron fields, a macro (@daily) or "@every 15m"; UTC
    concurrency_policy: str = FORBID
    starting_deadline_s: float | None = None
    history_limit: int = 10
    paused: bool = False  # start paused (``gameday schedule resume`` starts it)

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"name {self.name!r} must be lowercase letters, digits and '-', "
                             "at most 52 characters (a Kubernetes CronJob name)")
        if self.concurrency_policy not in POLICIES:
            raise ValueError(f"concurrency_policy {self.concurrency_policy!r} is none of "
                             f"{', '.join(POLICIES)}")
        if self.starting_deadline_s is not None and self.starting_deadline_s < 0:
            raise ValueError("starting_deadline_s must be >= 0")
        if self.history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        try:
            parse_timing(self.schedule)
        except CronError as exc:
            raise ValueError(f"schedule: {exc}") from exc

    @property
    def timing(self) -> Timing:
        return parse_timing(self.schedule)


@dataclass(frozen=True)
class SchedulesFile:
    schedules: tuple[ScheduleSpec, ...]


def load_schedules(path: Path) -> tuple[ScheduleSpec, ...]:
    """A schedules file (``schedules: [...]``); errors name file, line and field."""
    specs = load_yaml(path, SchedulesFile).schedules
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"schedule names used twice: {', '.join(twice)}", path=str(path),
                          field="schedules")
    return specs


class RunHandle(Protocol):
    """A run the runner started: ``poll`` is ``None`` while it goes, then its outcome
    (passed, failed, inconclusive, aborted, interrupted)."""

    def poll(self) -> str | None: ...


class Runner(Protocol):
    """Starts one run of ``plan`` for the fire time ``scheduled_at``; must not block."""

    def __call__(self, plan: str, scheduled_at: float) -> RunHandle: ...


@dataclass(frozen=True)
class Entry:
    """One fire time of a schedule and what became of it."""

    scheduled_at: float
    status: str  # running | an outcome | missed | forbidden | interrupted | failed to start
    started_at: float | None = None
    ended_at: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class ScheduleState:
    anchor: float  # when the schedule was first run (``@every`` counts from it)
    last_scheduled_at: float  # the newest fire time consumed: started or given up
    active: tuple[Entry, ...] = ()
    history: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class SchedulePaths:
    home: Path
    name: str

    @property
    def folder(self) -> Path:
        return self.home / SCHEDULES_DIR

    @property
    def state(self) -> Path:
        return self.folder / f"{self.name}.json"

    @property
    def pause_marker(self) -> Path:
        return self.folder / f"{self.name}.paused"

    def plan_lock(self, plan: str) -> Path:
        digest = hashlib.sha256(plan.encode()).hexdigest()[:16]
        return self.folder / f"plan-{digest}.lock"


def save_state(path: Path, state: ScheduleState) -> None:
    write_atomic(path, json.dumps(asdict(state), indent=1))


def load_state(path: Path) -> ScheduleState | None:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: unreadable schedule state ({exc}); "
                           "move it aside to start the schedule afresh") from exc
    return ScheduleState(anchor=raw["anchor"], last_scheduled_at=raw["last_scheduled_at"],
                         active=tuple(Entry(**e) for e in raw.get("active", ())),
                         history=tuple(Entry(**e) for e in raw.get("history", ())))


def set_paused(home: Path, name: str, paused: bool) -> Path:
    """Pause or resume a schedule (a running scheduler sees it at its next tick)."""
    marker = SchedulePaths(home, name).pause_marker
    if paused:
        write_atomic(marker, "paused\n")
    else:
        marker.unlink(missing_ok=True)
    return marker


def is_paused(home: Path, name: str) -> bool:
    return SchedulePaths(home, name).pause_marker.exists()


@dataclass
class Scheduler:
    """Runs one schedule: ``with Scheduler(...) as s: s.run()`` (or ``s.tick()`` by hand)."""

    spec: ScheduleSpec
    runner: Runner
    clock: Clock
    home: Path
    poll_s: float = DEFAULT_POLL_S
    state: ScheduleState = field(init=False)
    _handles: dict[float, RunHandle] = field(default_factory=dict, init=False)
    _forbidden: set[float] = field(default_factory=set, init=False)
    _lock: IO[str] | None = field(default=None, init=False)

    @property
    def paths(self) -> SchedulePaths:
        return SchedulePaths(self.home, self.spec.name)

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._acquire()
        try:
            self._resume_state()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _resume_state(self) -> None:
        now = self.clock.wall()
        found = load_state(self.paths.state)
        if found is None:
            found = ScheduleState(anchor=now, last_scheduled_at=now)
            if self.spec.paused:
                set_paused(self.home, self.spec.name, True)
        self.state = self._orphans_interrupted(found, now)
        save_state(self.paths.state, self.state)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the lock
            self._lock = None

    def _acquire(self) -> None:
        path = self.paths.plan_lock(self.spec.plan)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ScheduleLocked(f"plan {self.spec.plan!r} is already scheduled by {holder} "
                                 f"(lock {path})") from exc
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}, schedule {self.spec.name}\n")
        handle.flush()
        self._lock = handle

    def _orphans_interrupted(self, state: ScheduleState, now: float) -> ScheduleState:
        """Runs a previous scheduler left going cannot be followed: they are interrupted."""
        lost = tuple(replace(e, status=INTERRUPTED, ended_at=now,
                             detail="the scheduler stopped while it ran")
                     for e in state.active)
        return self._with_history(replace(state, active=()), *lost)

    # -- one pass ---------------------------------------------------------------------
    def tick(self) -> tuple[Entry, ...]:
        """Collect finished runs, then start (or give up) the newest due fire time.
        Returns the entries this pass added to the history or started."""
        now, before = self.clock.wall(), self.state
        events = list(self._collect(now))
        if not is_paused(self.home, self.spec.name):
            events += self._fire(now)
        if self.state != before:
            save_state(self.paths.state, self.state)
        return tuple(events)

    def _collect(self, now: float) -> list[Entry]:
        done, still = [], []
        for entry in self.state.active:
            handle = self._handles.get(entry.scheduled_at)
            outcome = handle.poll() if handle is not None else INTERRUPTED
            if outcome is None:
                still.append(entry)
                continue
            self._handles.pop(entry.scheduled_at, None)
            done.append(replace(entry, status=outcome, ended_at=now))
        self.state = self._with_history(replace(self.state, active=tuple(still)), *done)
        return done

    def _fire(self, now: float) -> list[Entry]:
        due, hidden = self.spec.timing.latest_due(self.state.last_scheduled_at, now,
                                                  self.state.anchor)
        if due is None:
            return []
        events = []
        if hidden:
            events.append(Entry(due, MISSED, detail=f"{hidden} earlier fire time(s) missed; "
                                                    "only the newest is run"))
        deadline = self.spec.starting_deadline_s
        if deadline is not None and now - due > deadline:
            events.append(Entry(due, MISSED, detail=f"{now - due:.0f}s late, past the "
                                                    f"starting deadline of {deadline:g}s"))
            self._consume(due, *events)
            return events
        if self.spec.concurrency_policy == FORBID and self.state.active:
            return self._forbid(due)
        self._consume(due, *events)  # consumed before it starts: never run twice
        save_state(self.paths.state, self.state)
        return [*events, self._start(due, now)]

    def _forbid(self, due: float) -> list[Entry]:
        """The fire time waits for the run still going (within its deadline); said once."""
        if due in self._forbidden:
            return []
        self._forbidden.add(due)
        entry = Entry(due, FORBIDDEN, detail="the previous run is still going "
                                             "(concurrency policy Forbid)")
        self.state = self._with_history(self.state, entry)
        return [entry]

    def _start(self, due: float, now: float) -> Entry:
        try:
            self._handles[due] = self.runner(self.spec.plan, due)
        except (HarnessError, OSError) as exc:
            failed = Entry(due, FAILED_TO_START, started_at=now, ended_at=now,
                           detail=f"{type(exc).__name__}: {exc}")
            self.state = self._with_history(self.state, failed)
            return failed
        started = Entry(due, RUNNING, started_at=now)
        self.state = replace(self.state, active=(*self.state.active, started))
        return started

    def _consume(self, due: float, *entries: Entry) -> None:
        self.state = self._with_history(replace(self.state, last_scheduled_at=due), *entries)

    def _with_history(self, state: ScheduleState, *entries: Entry) -> ScheduleState:
        kept = (*state.history, *entries)[-self.spec.history_limit:]
        return replace(state, history=kept)

    # -- the loop ---------------------------------------------------------------------
    def sleep_s(self) -> float:
        """Until the next fire time, or the next poll of the runs still going."""
        now = self.clock.wall()
        wait = self.spec.timing.next_after(max(now, self.state.last_scheduled_at),
                                           self.state.anchor) - now
        if self.state.active or is_paused(self.home, self.spec.name):
            wait = min(wait, self.poll_s)
        return max(0.0, wait)

    def run(self, *, until: float | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> None:
        """Tick and sleep until ``should_stop()`` or the wall clock reaches ``until``."""
        while not should_stop() and (until is None or self.clock.wall() < until):
            self.tick()
            wait = self.sleep_s()
            if until is not None:
                wait = min(wait, until - self.clock.wall())
            self.clock.sleep(max(wait, MIN_SLEEP_S))
