"""Recording drill journals into the history database, idempotently.

A drill run is identified by ``(run_id, drill, started_at)``: a journal recorded twice is
one row (unchanged: skipped by its hash; changed: replaced), so ``history import`` can be
run any number of times over the same run directories. Each journal is recorded in one
``BEGIN IMMEDIATE`` transaction: a crash leaves it either whole or absent, never half.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.drill.journal import JOURNAL_DIR, Journal, read_journal
from harness.history.meta import RunMeta, meta_of
from harness.history.queries import RecordedRun, RecordedVerdict
from harness.history.schema import HistoryError, connect, transaction
from harness.runs import runs_dir

OUTCOMES = frozenset({"passed", "failed", "inconclusive", "aborted", "interrupted"})
DETECTION_PREFIX = "detection_lag_s."
NOTIFICATION_PREFIX = "notification_lag_s."


@dataclass(frozen=True)
class ImportResult:
    recorded: int = 0  # new or changed drill runs written
    unchanged: int = 0  # journals already recorded as they are

    def __add__(self, other: ImportResult) -> ImportResult:
        return ImportResult(self.recorded + other.recorded, self.unchanged + other.unchanged)


def first_by_name(journal: Journal) -> dict[str, int]:
    """Alert name -> the index of its first record in the journal."""
    first: dict[str, int] = {}
    for index, alert in enumerate(journal.alerts):
        first.setdefault(alert.name, index)
    return first


def _upsert_run(db: sqlite3.Connection, run_id: str, meta: RunMeta) -> None:
    db.execute(
        "INSERT INTO runs (run_id, stack, vllm, vllm_router, model, model_revision, "
        "stack_file_sha256, alert_rules_sha256, llm_drill_commit) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
        "stack = excluded.stack, vllm = excluded.vllm, vllm_router = excluded.vllm_router, "
        "model = excluded.model, model_revision = excluded.model_revision, "
        "stack_file_sha256 = excluded.stack_file_sha256, "
        "alert_rules_sha256 = excluded.alert_rules_sha256, "
        "llm_drill_commit = excluded.llm_drill_commit",
        (run_id, meta.stack, meta.vllm, meta.vllm_router, meta.model, meta.model_revision,
         meta.stack_file_sha256, meta.alert_rules_sha256, meta.llm_drill_commit))


def _insert_children(db: sqlite3.Connection, row_id: int, journal: Journal) -> None:
    db.executemany("INSERT INTO measurements VALUES (?, ?, ?)",
                   [(row_id, k, v) for k, v in journal.measurements.items()])
    db.executemany("INSERT INTO verdicts VALUES (?, ?, ?, ?, ?)",
                   [(row_id, i, v.property, int(v.ok), v.detail)
                    for i, v in enumerate(journal.verdicts)])
    first = first_by_name(journal)
    lags = journal.measurements
    db.executemany(
        "INSERT INTO alerts (drill_run_id, seq, name, state, at, severity, detection_lag_s, "
        "notification_lag_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(row_id, i, a.name, a.state, a.at, a.labels.get("severity"),
          lags.get(DETECTION_PREFIX + a.name) if first[a.name] == i else None,
          lags.get(NOTIFICATION_PREFIX + a.name) if first[a.name] == i else None)
         for i, a in enumerate(journal.alerts)])
    db.executemany("INSERT INTO load_windows VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(row_id, i, s.window, s.requests, s.ok, s.ttft_p95_s, s.goodput_per_s)
                    for i, s in enumerate(journal.load)])


def record_journal(db: sqlite3.Connection, journal: Journal, journal_path: Path,
                   meta: RunMeta, *, recorded_at: float | None = None) -> bool:
    """Record one drill run; ``False`` when exactly this journal is already recorded."""
    if journal.outcome not in OUTCOMES:
        raise HistoryError(f"{journal_path}: outcome {journal.outcome!r} is none of "
                           f"{', '.join(sorted(OUTCOMES))}")
    digest = hashlib.sha256(journal_path.read_bytes()).hexdigest()
    key = (journal.run_id, journal.drill, journal.started_at)
    with transaction(db):
        found = db.execute("SELECT id, journal_sha256 FROM drill_runs WHERE run_id = ? AND "
                           "drill = ? AND started_at = ?", key).fetchone()
        if found is not None and found[1] == digest:
            return False
        _upsert_run(db, journal.run_id, meta)
        if found is not None:
            db.execute("DELETE FROM drill_runs WHERE id = ?", (found[0],))
        cursor = db.execute(
            "INSERT INTO drill_runs (run_id, drill, started_at, ended_at, outcome, error, "
            "journal_path, journal_sha256, plan, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, journal.ended_at, journal.outcome, journal.error, str(journal_path),
             digest, meta.plan, time.time() if recorded_at is None else recorded_at))
        assert cursor.lastrowid is not None  # an INSERT always sets it
        _insert_children(db, cursor.lastrowid, journal)
    return True


def journal_paths(run_dir: Path) -> list[Path]:
    return sorted((run_dir / JOURNAL_DIR).glob("*.json"))


def recorded_already(db: sqlite3.Connection, journal_path: Path) -> bool:
    """This exact journal (by its hash) is recorded: no need to parse it."""
    digest = hashlib.sha256(journal_path.read_bytes()).hexdigest()
    found = db.execute("SELECT 1 FROM drill_runs WHERE journal_sha256 = ? LIMIT 1", (digest,))
    return found.fetchone() is not None


def record_run(db: sqlite3.Connection, run_dir: Path) -> ImportResult:
    """Record every journal of a run directory (with the run's recorded facts)."""
    meta = meta_of(run_dir)
    result = ImportResult()
    for path in journal_paths(run_dir):
        fresh = (not recorded_already(db, path)
                 and record_journal(db, read_journal(path), path, meta))
        result += ImportResult(recorded=1) if fresh else ImportResult(unchanged=1)
    return result


def run_dirs_under(home: Path) -> list[Path]:
    """Every run directory of a home that has journals (and the home itself, where an
    attached stack's drills write theirs)."""
    found = [home] if journal_paths(home) else []
    runs = runs_dir(home)
    if runs.is_dir():
        found += [p for p in sorted(runs.iterdir()) if p.is_dir() and journal_paths(p)]
    return found


def import_runs(db_file: Path, run_dirs: Sequence[Path] | None = None, *,
                home: Path | None = None, rebuild: bool = False) -> ImportResult:
    """Record the journals of ``run_dirs`` (default: every run under ``home``) into the
    database at ``db_file``; ``rebuild`` first forgets every recorded drill run."""
    chosen: Iterable[Path] = run_dirs if run_dirs is not None else (
        run_dirs_under(home) if home is not None else ())
    db = connect(db_file)
    try:
        if rebuild:
            forget_all(db)
        result = ImportResult()
        for run_dir in chosen:
            result += record_run(db, run_dir)
        return result
    finally:
        db.close()


def forget_all(db: sqlite3.Connection) -> None:
    with transaction(db):
        db.execute("DELETE FROM drill_runs")  # children go with it (ON DELETE CASCADE)
        db.execute("DELETE FROM runs")


def as_recorded(journal: Journal, meta: RunMeta) -> RecordedRun:
    """A journal as the trends read a recorded run (without going through the database)."""
    return RecordedRun(
        drill=journal.drill, run_id=journal.run_id, started_at=journal.started_at,
        ended_at=journal.ended_at, outcome=journal.outcome, stack=meta.stack, plan=meta.plan,
        measurements=dict(journal.measurements),
        verdicts=tuple(RecordedVerdict(v.property, v.ok, v.detail) for v in journal.verdicts),
        severities={a.name: a.labels["severity"] for a in journal.alerts
                    if "severity" in a.labels},
        requests=sum(s.requests for s in journal.load), ok=sum(s.ok for s in journal.load))


def read_run(run_dir: Path) -> list[RecordedRun]:
    """A run directory's journals as recorded runs."""
    meta = meta_of(run_dir)
    return [as_recorded(read_journal(path), meta) for path in journal_paths(run_dir)]
