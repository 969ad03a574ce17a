"""A game day from plan to result: what it would do (``--dry-run`` prints it), the
announcements around the session, and the result as an exit code."""

from __future__ import annotations

import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from harness.auth import token_from_env
from harness.clock import SystemClock
from harness.gameday.abort import AbortWatch
from harness.gameday.collect import Collected
from harness.gameday.desk import (
    DESK_TOKEN_ENV,
    DeskServer,
    Facilitation,
    Narrator,
    read_keys,
)
from harness.gameday.plan import LoadedPlan, stack_hosts
from harness.gameday.run import (
    ABORTED,
    INTERRUPTED,
    PASSED,
    GameDayResult,
    Session,
    announce,
    announcement,
    prometheus_reader,
)
from harness.manual import EVENTS_FILE, MANUAL_DIR_ENV, Desk
from harness.report.findings import FINDINGS_FILE
from harness.runs import runs_dir
from harness.topology import Topology

EXIT_CODES = {PASSED: 0, ABORTED: 3, INTERRUPTED: 130}  # anything else: 1


def describe_plan(loaded: LoadedPlan, topology: Topology, collected: Sequence[Collected],
                  argv: Sequence[str]) -> str:
    plan = loaded.plan
    stack = (f"attached at {plan.stack.attach} (topology {loaded.stack_file})"
             if plan.stack.attach else f"started from {loaded.stack_file}")
    hosts = "; ".join(f"{h}: {why}" for h, why in stack_hosts(loaded, topology).items())
    lines = [f"game day {plan.name} ({loaded.path})", f"  stack: {stack}",
             f"  targets allowed: {', '.join(plan.targets)}; reached: {hosts}", "  drills:"]
    for drill, found in zip(plan.drills, collected, strict=True):
        lines += [f"    {drill.select}"] + [f"      runs {node}" for node in found.node_ids]
        lines += [f"      sets {k}={v!r}" for k, v in drill.overrides.items()]
    a = plan.abort
    expected = ", ".join(sorted(loaded.expected_alerts())) or "none"
    lines += [f"  abort after {a.for_s:g}s of: client error ratio > {a.error_ratio}, client "
              f"TTFT p95 > {a.ttft_p95_s}s"
              + (f", a critical alert other than {expected}"
                 if a.on_unexpected_critical_alert else ""),
              f"    watching {topology.prometheus_url}",
              f"  announce: {plan.announce.webhook or 'nowhere'}",
              f"  session: {shlex.join(argv)}"]
    return "\n".join(lines)


@dataclass(frozen=True)
class Manual:
    """People in the loop: the desk's HTTP API on ``host:port`` (0: any free port), and
    the terminal's keys from ``keys`` (None: HTTP only)."""

    host: str = "127.0.0.1"
    port: int = 0
    keys: TextIO | None = None


def run_plan(loaded: LoadedPlan, argv: list[str], prometheus_url: str,
             home: Path, manual: Manual | None = None) -> GameDayResult:
    """Announce, run the session under the watch, announce the result."""
    started = time.time()
    _warn(announce(loaded, announcement(loaded, "firing", "game day started", started)))
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix="gameday-") as scratch:
        clock = SystemClock()
        session = Session(argv=argv, cwd=loaded.drills_dir.parent,
                          abort_file=Path(scratch) / "abort.json",
                          watch=AbortWatch(loaded.plan.abort, loaded.expected_alerts(), clock),
                          read=prometheus_reader(prometheus_url), clock=clock)
        if manual is None:
            result = session.run()
        else:
            desk = desk_folder(home, loaded.plan.name, started)
            result = run_with_people(session, manual, desk,
                                     loaded.drills_dir.parent / "runbooks")
            _say(f"the desk's record: {desk / EVENTS_FILE}")
    findings = findings_since(home, started)
    summary = f"game day {result.outcome}: {result.reason}"
    if findings is not None:
        summary += f"; findings: {findings}"
    _warn(announce(loaded, announcement(loaded, "resolved", summary, started, time.time(),
                                        details=_read(findings))))
    return result


def desk_folder(home: Path, plan: str, started: float) -> Path:
    """Where a manual game day keeps its desk's record (every go, acknowledgement and
    runbook opening): ``<home>/gamedays/<plan>-<start, UTC>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    return home / "gamedays" / f"{plan}-{stamp}"


def run_with_people(session: Session, manual: Manual, folder: Path, runbooks: Path,
                    say: Callable[[str], None] | None = None) -> GameDayResult:
    """The session with its desk open: each fault waits for the facilitator's go."""
    tell = say or _say
    desk = Desk(folder)
    facilitation = Facilitation(desk, runbooks, say=tell)
    with DeskServer(facilitation, manual.host, manual.port,
                    token=token_from_env(DESK_TOKEN_ENV)) as server:
        tell(f"the desk is open at {server.url} (Enter: go, d: detected, m: mitigated)")
        if manual.keys is not None:
            threading.Thread(target=read_keys, args=(facilitation, manual.keys),
                             name="gameday-keys", daemon=True).start()
        session = replace(session, env={MANUAL_DIR_ENV: str(folder)},
                          on_tick=Narrator(desk, server.url, tell))
        return session.run()


def _say(line: str) -> None:
    print(f"llm-drill gameday: {line}", flush=True)


def findings_since(home: Path, since: float) -> Path | None:
    """The findings of the newest run started under ``home`` after ``since``."""
    folder = runs_dir(home)
    runs = sorted((d for d in folder.iterdir() if d.is_dir() and d.stat().st_mtime >= since),
                  key=lambda d: d.stat().st_mtime) if folder.is_dir() else []
    found = runs[-1] / FINDINGS_FILE if runs else None
    return found if found is not None and found.is_file() else None


def _read(path: Path | None, limit: int = 8000) -> str:
    return "" if path is None else path.read_text(encoding="utf-8")[:limit]


def report_result(result: GameDayResult) -> int:
    print(f"llm-drill gameday: {result.outcome}: {result.reason}")
    if result.abort_to_exit_s is not None:
        print(f"llm-drill gameday: the session ended {result.abort_to_exit_s:.1f}s after "
              "the abort (faults reverted, stack down)")
    return EXIT_CODES.get(result.outcome, 1)


def _warn(problem: str | None) -> None:
    if problem is not None:
        print(f"llm-drill gameday: {problem}", file=sys.stderr)
