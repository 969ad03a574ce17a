"""Journals and run directories for the history tests: made up, small, realistic."""

from __future__ import annotations

from pathlib import Path

from harness.drill.journal import AlertRecord, Journal, LoadSummary, Verdict, write_journal
from harness.history.queries import RecordedRun, RecordedVerdict
from harness.runs import run_dir_for

T0 = 1_700_000_000.0
DAY = 86_400.0


def journal(drill: str = "node_kill", run_id: str = "r1", started_at: float = T0, *,
            outcome: str = "passed", recovery: float | None = 12.0,
            lag: float | None = 4.0, requests: int = 100, ok: int = 97) -> Journal:
    measurements = {"recovery_s": recovery} if recovery is not None else {}
    alerts: tuple[AlertRecord, ...] = ()
    verdicts = [Verdict("steady state before the fault", True),
                Verdict("front door keeps answering", outcome == "passed", "")]
    if lag is not None:
        measurements |= {"detection_lag_s.NodeDown": lag, "notification_lag_s.NodeDown": 1.5}
        alerts = (AlertRecord("NodeDown", "firing", started_at + 5, {"severity": "warning"}),
                  AlertRecord("NodeDown", "notified", started_at + 7, {"severity": "warning"}))
        verdicts.append(Verdict("NodeDown goes firing", True, "after 4.0s"))
    load = (LoadSummary("fault", requests, ok, {"5xx": requests - ok}, 0.1, 0.3, 1.0,
                        50.0, 9.0, 0),)
    return Journal(drill=drill, run_id=run_id, started_at=started_at,
                   ended_at=started_at + 60, outcome=outcome, measurements=measurements,
                   verdicts=tuple(verdicts), alerts=alerts, load=load)


def write_run(home: Path, run_id: str, *journals: Journal) -> Path:
    run_dir = run_dir_for(home, run_id)
    for j in journals:
        write_journal(j, run_dir)
    return run_dir


def recorded(drill: str = "node_kill", *, started_at: float = T0, outcome: str = "passed",
             recovery: float | None = 12.0, lag: float | None = None,
             verdicts: tuple[tuple[str, bool], ...] = (("front door keeps answering", True),),
             stack: str = "embedded", requests: int = 0, ok: int = 0,
             severities: dict[str, str] | None = None) -> RecordedRun:
    measurements = {"recovery_s": recovery} if recovery is not None else {}
    if lag is not None:
        measurements["detection_lag_s.NodeDown"] = lag
    return RecordedRun(drill=drill, run_id=f"run-{started_at:.0f}", started_at=started_at,
                       ended_at=started_at + 60, outcome=outcome, stack=stack,
                       measurements=measurements,
                       verdicts=tuple(RecordedVerdict(p, ok_) for p, ok_ in verdicts),
                       severities=severities or {}, requests=requests, ok=ok)
