"""A game day's session: one pytest run of every planned drill, watched; an abort
interrupts it with SIGINT and says why; start and end reach an Alertmanager receiver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.gameday.abort import AbortWatch, Reading
from harness.gameday.collect import Collected
from harness.gameday.plan import AbortConditions, load_plan
from harness.gameday.run import (
    ABORTED,
    FAILED,
    PASSED,
    Session,
    announce,
    announcement,
    pytest_argv,
)
from harness.waits import Wait
from harness.webhook.server import Receiver, WebhookServer
from harness.webhook.store import NotificationLog
from tests.fakes import FakeClock
from tests.unit.gameday.test_plan import PLAN, plan_file

BOUNDS = AbortConditions(error_ratio=0.5, ttft_p95_s=10.0, for_s=4.0)
ERRORS = Reading(error_ratio=0.9, ttft_p95_s=None, critical_alerts=frozenset())
# Exits 130 on SIGINT, as pytest does when interrupted; says when it is listening.
WAITS_FOR_SIGINT = ("import pathlib, signal, sys, time\n"
                    "signal.signal(signal.SIGINT, lambda *_: sys.exit(130))\n"
                    "pathlib.Path('listening').touch()\n"
                    "time.sleep(120)\n")


def test_one_session_runs_every_planned_drill_with_its_overrides(tmp_path: Path) -> None:
    loaded = load_plan(plan_file(tmp_path))
    collected = [Collected("a", ("drills/test_a.py::test_a",)),
                 Collected("b", ("drills/test_b.py::test_b[x]", "drills/test_b.py::test_b[y]"))]
    argv = pytest_argv(loaded, collected, tmp_path / "home", python="py")
    assert argv[:5] == ["py", "-m", "pytest", "-p", "no:cacheprovider"]
    assert argv[6:9] == ["drills/test_a.py::test_a", "drills/test_b.py::test_b[x]",
                         "drills/test_b.py::test_b[y]"]
    assert argv[argv.index("--llm-drill-home") + 1] == str(tmp_path / "home")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--drill-set"] == [
        "cancel_storm.waves=2", "node_restart.streams=4"]
    assert "--stack-url" not in argv


def test_an_attached_plan_runs_on_the_stack_at_its_url(tmp_path: Path) -> None:
    loaded = load_plan(plan_file(tmp_path, PLAN + "stack: {attach: 'http://127.0.0.1:18080'}\n"))
    argv = pytest_argv(loaded, [Collected("a", ("drills/test_a.py::test_a",))], tmp_path)
    assert argv[argv.index("--stack-url") + 1] == "http://127.0.0.1:18080"


def session(tmp_path: Path, code: str, readings: list[Reading | None],
            listening: Path | None = None) -> Session:
    """The session over ``code``; readings start once ``listening`` exists (the child's
    SIGINT handler is in place), one per poll, the last one repeated."""
    clock = FakeClock()
    feed = iter(readings)

    def read() -> Reading | None:
        if listening is not None:
            Wait(within=30, interval=0.05).until_true("the session to listen",
                                                      listening.exists)
        return next(feed, readings[-1])
    return Session(argv=[sys.executable, "-c", code], cwd=tmp_path,
                   abort_file=tmp_path / "abort.json",
                   watch=AbortWatch(BOUNDS, frozenset(), clock), read=read, clock=clock,
                   poll_s=2.0)


def test_a_breach_that_lasts_interrupts_the_session_and_says_why(tmp_path: Path) -> None:
    result = session(tmp_path, WAITS_FOR_SIGINT, [None, ERRORS],
                     listening=tmp_path / "listening").run()
    assert result.outcome == ABORTED
    assert result.exit_code == 130
    assert result.reason.startswith("client error ratio: 0.90 > 0.5 for 4s")
    assert json.loads((tmp_path / "abort.json").read_text())["reason"] == result.reason
    assert result.abort_to_exit_s is not None


def test_a_session_left_alone_ends_with_pytest_outcome(tmp_path: Path) -> None:
    calm = Reading(0.0, 0.1, frozenset())
    assert session(tmp_path, "pass", [calm]).run().outcome == PASSED
    failed = session(tmp_path, "import sys; sys.exit(1)", [calm]).run()
    assert (failed.outcome, failed.exit_code) == (FAILED, 1)
    assert not (tmp_path / "abort.json").exists()


def test_start_and_end_reach_an_alertmanager_receiver(tmp_path: Path) -> None:
    receiver = Receiver(NotificationLog(tmp_path / "notifications.jsonl"))
    with WebhookServer("127.0.0.1", 0, receiver) as server:
        text = PLAN + f"announce: {{webhook: '{server.url}/alerts/gameday'}}\n"
        loaded = load_plan(plan_file(tmp_path, text))
        assert announce(loaded, announcement(loaded, "firing", "started", 1.7e9)) is None
        assert announce(loaded, announcement(loaded, "resolved", "game day passed", 1.7e9,
                                             1.7e9 + 60)) is None
    got = receiver.journal.items()
    assert [(n.alertname, n.status, n.labels["plan"]) for n in got] == [
        ("GameDay", "firing", "weekly"), ("GameDay", "resolved", "weekly")]
    assert got[1].ends_at == "2023-11-14T22:14:20.000000Z"


def test_a_receiver_that_is_down_is_reported_not_fatal(tmp_path: Path) -> None:
    text = PLAN + "announce: {webhook: 'http://127.0.0.1:9/hooks/gameday'}\n"
    loaded = load_plan(plan_file(tmp_path, text))
    problem = announce(loaded, announcement(loaded, "firing", "started", 1.7e9))
    assert problem is not None and "127.0.0.1:9/hooks/gameday" in problem


# Started with SIGINT ignored, as a shell's background job is; then as `gameday run` does.
IGNORED_THEN_HANDLED = """\
import signal, subprocess, sys
from harness.gameday.run import interrupt_on_sigint_and_sigterm
signal.signal(signal.SIGINT, signal.SIG_IGN)
interrupt_on_sigint_and_sigterm()
child = ("import signal; "
         "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                     check=True).stdout.strip())
try:
    signal.raise_signal(signal.SIGTERM)
except KeyboardInterrupt as exc:
    print(f"interrupted by {exc}")
"""


def test_a_game_day_started_with_sigint_ignored_can_still_interrupt_its_session() -> None:
    """The session's child turns SIGINT into KeyboardInterrupt again, and SIGTERM
    interrupts the game day as Ctrl-C does."""
    done = subprocess.run([sys.executable, "-c", IGNORED_THEN_HANDLED], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["True", "interrupted by SIGTERM"]
