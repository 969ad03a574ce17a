"""The history database: where it lives, how it is opened, and its schema's migrations.

``<home>/history.sqlite3``, one file per llm-drill home. Opened in WAL mode with a busy
timeout, so several writers (a pytest session, a scheduler, ``history import``) can
record at once: each record is one ``BEGIN IMMEDIATE`` transaction that waits its turn.

The schema is versioned: ``schema_version`` holds one row per applied migration, and
:data:`MIGRATIONS` is the ordered list of functions that take a database from version
``n`` to ``n + 1``. Opening a database migrates it to :data:`CURRENT_VERSION`; a database
from a newer llm-drill is refused, never downgraded.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError

DB_NAME = "history.sqlite3"
BUSY_TIMEOUT_S = 30.0

Migration = Callable[[sqlite3.Connection], None]


class HistoryError(HarnessError):
    """The history database cannot be used (too new, corrupt, locked for too long)."""


def db_path(home: Path) -> Path:
    return home / DB_NAME


def _run(db: sqlite3.Connection, script: str) -> None:
    """Each statement of ``script`` inside the caller's transaction (``executescript``
    would commit it first)."""
    for statement in filter(str.strip, script.split(";")):
        db.execute(statement)


def _v1_runs_and_verdicts(db: sqlite3.Connection) -> None:
    """Runs, one row per drill run, its measurements, verdicts and alerts."""
    _run(db, """
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            stack TEXT NOT NULL
        );
        CREATE TABLE drill_runs (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            drill TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL,
            outcome TEXT NOT NULL,
            error TEXT NOT NULL DEFAULT '',
            journal_path TEXT NOT NULL,
            journal_sha256 TEXT NOT NULL,
            UNIQUE (run_id, drill, started_at)
        );
        CREATE TABLE measurements (
            drill_run_id INTEGER NOT NULL REFERENCES drill_runs(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (drill_run_id, key)
        );
        CREATE TABLE verdicts (
            drill_run_id INTEGER NOT NULL REFERENCES drill_runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            property TEXT NOT NULL,
            ok INTEGER NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (drill_run_id, seq)
        );
        CREATE TABLE alerts (
            drill_run_id INTEGER NOT NULL REFERENCES drill_runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (drill_run_id, seq)
        );
    """)


def _v2_versions_plan_and_lags(db: sqlite3.Connection) -> None:
    """The versions that matter per run, the plan a drill ran under, an alert's severity
    and lags, the client-side load windows (error budget); indexes for the trend query
    and for skipping a journal already recorded without parsing it."""
    _run(db, """
        ALTER TABLE runs ADD COLUMN vllm TEXT;
        ALTER TABLE runs ADD COLUMN vllm_router TEXT;
        ALTER TABLE runs ADD COLUMN model TEXT;
        ALTER TABLE runs ADD COLUMN model_revision TEXT;
        ALTER TABLE runs ADD COLUMN stack_file_sha256 TEXT;
        ALTER TABLE runs ADD COLUMN alert_rules_sha256 TEXT;
        ALTER TABLE runs ADD COLUMN llm_drill_commit TEXT;
        ALTER TABLE drill_runs ADD COLUMN plan TEXT;
        ALTER TABLE drill_runs ADD COLUMN recorded_at REAL;
        ALTER TABLE alerts ADD COLUMN severity TEXT;
        ALTER TABLE alerts ADD COLUMN detection_lag_s REAL;
        ALTER TABLE alerts ADD COLUMN notification_lag_s REAL;
        CREATE TABLE load_windows (
            drill_run_id INTEGER NOT NULL REFERENCES drill_runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            window TEXT NOT NULL,
            requests INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            ttft_p95_s REAL,
            goodput_per_s REAL NOT NULL,
            PRIMARY KEY (drill_run_id, seq)
        );
        CREATE INDEX drill_runs_by_drill ON drill_runs (drill, started_at);
        CREATE INDEX drill_runs_by_digest ON drill_runs (journal_sha256);
    """)


#: In order: ``MIGRATIONS[n]`` takes a database from version ``n`` to ``n + 1``.
MIGRATIONS: tuple[Migration, ...] = (_v1_runs_and_verdicts, _v2_versions_plan_and_lags)
CURRENT_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS schema_version "
               "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row[0] is not None else 0


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any error): one writer at a
    time; the others wait their turn, up to the busy timeout."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection, target: int = CURRENT_VERSION) -> int:
    """Apply the migrations from the database's version up to ``target``, each in its own
    transaction (with its ``schema_version`` row); return the version reached."""
    with transaction(db):  # one migrator at a time; the others see its result
        version = schema_version(db)
    if version > CURRENT_VERSION:
        raise HistoryError(f"history database is at schema version {version}, newer than "
                           f"this llm-drill knows ({CURRENT_VERSION}): upgrade llm-drill")
    while version < target:
        with transaction(db):
            version = schema_version(db)  # another process may have just migrated
            if version < target:
                MIGRATIONS[version](db)
                db.execute("INSERT INTO schema_version VALUES (?, ?)", (version + 1, time.time()))
                version += 1
    return version


def enter_wal(db: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, waiting out other processes doing the same: on a new
    file the switch needs the database to itself, and SQLite answers "database is
    locked" at once instead of waiting the busy timeout (four processes recording their
    first runs at once saw it)."""
    from harness.waits import Probe, Wait

    def switched() -> Probe[None]:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        return Probe(done=str(mode).lower() == "wal", seen=f"journal_mode {mode}")

    Wait(within=BUSY_TIMEOUT_S, interval=0.02, transient=(sqlite3.OperationalError,)).until(
        "the history database in WAL mode", switched)


def connect(path: Path, *, target: int = CURRENT_VERSION) -> sqlite3.Connection:
    """Open (creating if need be) and migrate the history database at ``path``.

    Autocommit mode (``isolation_level=None``): every write opens its own transaction.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.DatabaseError as exc:
        raise HistoryError(f"{path}: {exc}") from exc
    try:
        enter_wal(db)
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
        migrate(db, target)
    except BaseException as exc:
        db.close()
        if isinstance(exc, sqlite3.DatabaseError):
            raise HistoryError(f"{path}: {exc}") from exc
        raise
    return db
