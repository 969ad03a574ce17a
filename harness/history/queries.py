"""Reading the history back: recorded drill runs as plain values for trends and the score."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LAST = 10
CHUNK = 500  # drill-run ids per query


@dataclass(frozen=True)
class RecordedVerdict:
    name: str  # the property the drill asserted
    ok: bool
    detail: str = ""

    @property
    def inconclusive(self) -> bool:
        return self.detail.startswith("inconclusive")


@dataclass(frozen=True)
class RecordedRun:
    """One recorded drill run, as the trends and the score read it."""

    drill: str
    run_id: str
    started_at: float
    ended_at: float
    outcome: str
    stack: str = "embedded"
    plan: str | None = None
    measurements: dict[str, float] = field(default_factory=dict)
    verdicts: tuple[RecordedVerdict, ...] = ()
    severities: dict[str, str] = field(default_factory=dict)  # alert name -> severity
    requests: int = 0  # client requests over the drill's load windows
    ok: int = 0


_RUN_COLUMNS = ("d.id, d.drill, d.run_id, d.started_at, d.ended_at, d.outcome, r.stack, "
                "d.plan")


def _where(drill: str | None, stack: str | None, run_ids: Sequence[str]) -> tuple[str, list[str]]:
    clauses, params = [], []
    if drill is not None:
        clauses.append("d.drill = ?")
        params.append(drill)
    if stack is not None:
        clauses.append("r.stack = ?")
        params.append(stack)
    if run_ids:
        clauses.append(f"d.run_id IN ({', '.join('?' * len(run_ids))})")
        params.extend(run_ids)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def recorded_runs(db: sqlite3.Connection, *, last: int | None = DEFAULT_LAST,
                  drill: str | None = None, stack: str | None = None,
                  run_ids: Sequence[str] = ()) -> list[RecordedRun]:
    """Recorded drill runs, newest first; ``last``: at most that many per drill."""
    where, params = _where(drill, stack, run_ids)
    base = (f"SELECT {_RUN_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY d.drill "
            f"ORDER BY d.started_at DESC) AS n FROM drill_runs d JOIN runs r USING (run_id)"
            f"{where}")
    limit = "" if last is None else f" WHERE n <= {int(last)}"
    rows = db.execute(f"SELECT * FROM ({base}){limit} ORDER BY started_at DESC",
                      params).fetchall()
    return _with_children(db, rows)


def _children(db: sqlite3.Connection, sql: str, ids: list[int]) -> list[Any]:
    """Rows of ``sql`` for the drill runs ``ids`` (its ``{ids}`` is their placeholders)."""
    found: list[Any] = []
    for start in range(0, len(ids), CHUNK):  # SQLite caps the number of parameters
        chunk = ids[start:start + CHUNK]
        found += db.execute(sql.format(ids=", ".join("?" * len(chunk))), chunk).fetchall()
    return found


def _with_children(db: sqlite3.Connection, rows: list[Any]) -> list[RecordedRun]:
    ids = [row[0] for row in rows]
    measurements: dict[int, dict[str, float]] = defaultdict(dict)
    for rid, key, value in _children(db, "SELECT drill_run_id, key, value FROM measurements "
                                         "WHERE drill_run_id IN ({ids})", ids):
        measurements[rid][key] = value
    verdicts: dict[int, list[RecordedVerdict]] = defaultdict(list)
    for rid, prop, ok, detail in _children(db, "SELECT drill_run_id, property, ok, detail "
                                               "FROM verdicts WHERE drill_run_id IN ({ids}) "
                                               "ORDER BY drill_run_id, seq", ids):
        verdicts[rid].append(RecordedVerdict(prop, bool(ok), detail))
    severities: dict[int, dict[str, str]] = defaultdict(dict)
    for rid, name, severity in _children(db, "SELECT drill_run_id, name, severity FROM alerts "
                                             "WHERE drill_run_id IN ({ids}) AND severity "
                                             "IS NOT NULL", ids):
        severities[rid][name] = severity
    load: dict[int, tuple[int, int]] = {}
    for rid, requests, ok in _children(db, "SELECT drill_run_id, SUM(requests), SUM(ok) FROM "
                                           "load_windows WHERE drill_run_id IN ({ids}) "
                                           "GROUP BY drill_run_id", ids):
        load[rid] = (requests, ok)
    return [RecordedRun(drill=drill, run_id=run_id, started_at=start, ended_at=end,
                        outcome=outcome, stack=stack, plan=plan,
                        measurements=measurements[rid], verdicts=tuple(verdicts[rid]),
                        severities=severities[rid], requests=load.get(rid, (0, 0))[0],
                        ok=load.get(rid, (0, 0))[1])
            for rid, drill, run_id, start, end, outcome, stack, plan, _ in rows]


def stacks(db: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in db.execute("SELECT DISTINCT stack FROM runs ORDER BY stack")]


def known_run_ids(db: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in db.execute("SELECT run_id FROM runs ORDER BY run_id")]


@dataclass(frozen=True)
class AlertRun:
    """One drill run that saw ``alert`` fire: its lag (the journal's detection lag for
    the alert) and the stack's recovery time (``recovery_s``), when measured."""

    alert: str
    drill: str
    run_id: str
    started_at: float
    outcome: str
    detection_lag_s: float | None
    recovery_s: float | None


_ALERT_RUNS = """
SELECT alert, drill, run_id, started_at, outcome, lag, recovery FROM (
    SELECT a.name AS alert, d.drill, d.run_id, d.started_at, d.outcome,
           COALESCE(MIN(a.detection_lag_s),
                    (SELECT m.value FROM measurements m WHERE m.drill_run_id = d.id
                     AND m.key = 'detection_lag_s.' || a.name)) AS lag,
           (SELECT m.value FROM measurements m WHERE m.drill_run_id = d.id
            AND m.key = 'recovery_s') AS recovery,
           ROW_NUMBER() OVER (PARTITION BY a.name, d.drill ORDER BY d.started_at DESC) AS n
    FROM alerts a JOIN drill_runs d ON a.drill_run_id = d.id
    WHERE a.state = 'firing'
    GROUP BY a.name, d.id)
WHERE n <= ? ORDER BY alert, drill, started_at DESC, run_id
"""


def alert_runs(db: sqlite3.Connection, *, last: int = DEFAULT_LAST) -> list[AlertRun]:
    """Per alert and drill, the newest ``last`` drill runs that saw the alert fire."""
    return [AlertRun(alert, drill, run_id, started, outcome, lag, recovery)
            for alert, drill, run_id, started, outcome, lag, recovery
            in db.execute(_ALERT_RUNS, (int(last),))]
