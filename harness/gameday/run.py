"""``llm-drill gameday run PLAN``: one pytest session runs the plan's drills on its stack
while the abort conditions are watched; an abort interrupts the session (SIGINT: pytest
unwinds, every fault's context reverts, the stack's teardown runs, the partial report is
written) and says why. Start and end are announced to the plan's webhook in
Alertmanager's format, so any receiver of alerts can take them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from harness.clients.prometheus import PrometheusClient
from harness.clock import Clock
from harness.errors import HarnessError
from harness.gameday.abort import AbortWatch, Reading, read_conditions
from harness.gameday.collect import Collected
from harness.gameday.plan import LoadedPlan
from harness.runs import ABORT_FILE_ENV

PASSED, FAILED, ABORTED, INTERRUPTED = "passed", "failed", "aborted", "interrupted"
UNWIND_WITHIN_S = 600.0  # after SIGINT: faults revert, the stack goes down
POLL_S = 2.0


@dataclass(frozen=True)
class GameDayResult:
    outcome: str
    reason: str
    exit_code: int
    abort_to_exit_s: float | None = None  # the abort decision to the session's end


def pytest_argv(loaded: LoadedPlan, collected: Sequence[Collected], home: Path,
                python: str = sys.executable) -> list[str]:
    """The one pytest session that runs the plan."""
    argv = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            *(i for c in collected for i in c.node_ids), "--llm-drill-home", str(home),
            "--stack-file", str(loaded.stack_file)]
    if loaded.plan.stack.attach is not None:
        argv += ["--stack-url", loaded.plan.stack.attach]
    for assignment in loaded.drill_sets():
        argv += ["--drill-set", assignment]
    return argv


def announcement(loaded: LoadedPlan, status: str, summary: str, started: float,
                 ended: float | None = None, *, details: str = "") -> dict[str, object]:
    """An Alertmanager webhook payload (version 4) for the game day itself; ``details``
    (the findings, if any) go in the ``description`` annotation."""
    labels = {"alertname": "GameDay", "plan": loaded.plan.name, "severity": "info"}
    annotations = {"summary": summary, **({"description": details} if details else {})}
    alert = {"status": status, "labels": labels, "annotations": annotations,
             "startsAt": _rfc3339(started),
             "endsAt": _rfc3339(ended) if ended is not None else "0001-01-01T00:00:00Z"}
    return {"version": "4", "status": status, "receiver": "gameday", "groupLabels": labels,
            "commonLabels": labels, "commonAnnotations": {"summary": summary},
            "externalURL": "", "alerts": [alert]}


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def announce(loaded: LoadedPlan, payload: dict[str, object]) -> str | None:
    """Post to the plan's webhook; what went wrong, if anything (never fatal: a game day
    is not lost to a receiver that is down)."""
    url = loaded.plan.announce.webhook
    if url is None:
        return None
    try:
        httpx.post(url, json=payload, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        return f"announcement to {url} failed: {exc}"
    return None


Reader = Callable[[], Reading | None]


def prometheus_reader(url: str) -> Reader:
    client = PrometheusClient(url, httpx.Client(timeout=5.0))

    def read() -> Reading | None:
        try:
            return read_conditions(client)
        except (HarnessError, httpx.HTTPError, OSError, ValueError):
            return None  # the stack is not up yet, or going down: no reading
    return read


@dataclass
class Session:
    """The pytest session and the watch over it."""

    argv: list[str]
    cwd: Path
    abort_file: Path
    watch: AbortWatch
    read: Reader
    clock: Clock
    poll_s: float = POLL_S
    aborted_at: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # more for the session (the desk)
    on_tick: Callable[[], None] = lambda: None  # each poll (a manual day's narrator)

    def run(self) -> GameDayResult:
        env = dict(os.environ, **self.env, **{ABORT_FILE_ENV: str(self.abort_file)})
        proc = subprocess.Popen(self.argv, cwd=self.cwd, env=env)
        interrupted = False
        try:
            reason = self._watch(proc)
        except KeyboardInterrupt:  # Ctrl-C or SIGINT: the session unwinds as it would
            reason, interrupted = None, True
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            code = _wait_or_kill(proc)
        if interrupted:
            return GameDayResult(INTERRUPTED, "interrupted by SIGINT", code)
        if reason is None:
            return GameDayResult(PASSED if code == 0 else FAILED,
                                 "every drill passed" if code == 0 else f"pytest exit {code}",
                                 code)
        assert self.aborted_at is not None
        return GameDayResult(ABORTED, reason, code, self.clock.now() - self.aborted_at)

    def _watch(self, proc: subprocess.Popen[bytes]) -> str | None:
        while proc.poll() is None:
            self.on_tick()
            reason = self.watch.observe(self.read())
            if reason is not None:
                self.aborted_at = self.clock.now()
                self.abort_file.write_text(json.dumps({"reason": reason,
                                                       "at": self.clock.wall()}))
                proc.send_signal(signal.SIGINT)
                return reason
            self.clock.sleep(self.poll_s)
        return None


def interrupt_on_sigint_and_sigterm() -> None:
    """In the game day's own process: Ctrl-C and SIGTERM both interrupt the session the
    way an abort does (the pytest child gets SIGINT and unwinds, reverting its faults).

    A process started in the background by a shell (``&``, nohup, some CI runners)
    inherits SIGINT *ignored*, Python then keeps it ignored, and so does every child it
    starts: the session's pytest never saw the abort's SIGINT and ran its fault to the
    end (seen on the real stack). A handled signal is reset to its default across
    ``exec``, so with a handler here the children get Python's KeyboardInterrupt back."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _wait_or_kill(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=UNWIND_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()  # the run's watchdog then tears the stack down
        return proc.wait()

