"""The history database's schema: created at the current version, migrated from v1 with
its rows kept, a newer database refused, WAL mode for concurrent writers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from harness.history.schema import (
    CURRENT_VERSION,
    MIGRATIONS,
    HistoryError,
    connect,
    migrate,
    schema_version,
)


def test_a_new_database_is_at_the_current_version_in_wal_mode(tmp_path: Path) -> None:
    db = connect(tmp_path / "h.sqlite3")
    assert schema_version(db) == CURRENT_VERSION == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert [r[0] for r in db.execute("SELECT version FROM schema_version")] == [1, 2]
    db.close()


def test_a_v1_database_migrates_to_current_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    old = connect(path, target=1)
    assert schema_version(old) == 1
    old.execute("INSERT INTO runs VALUES ('r1', 'embedded')")
    old.execute("INSERT INTO drill_runs (run_id, drill, started_at, ended_at, outcome, "
                "journal_path, journal_sha256) VALUES ('r1', 'node_kill', 1.0, 2.0, "
                "'passed', 'j.json', 'abc')")
    old.execute("INSERT INTO measurements VALUES (1, 'recovery_s', 12.5)")
    old.execute("INSERT INTO alerts VALUES (1, 0, 'NodeDown', 'firing', 1.5)")
    old.close()

    db = connect(path)
    assert schema_version(db) == CURRENT_VERSION
    assert db.execute("SELECT value FROM measurements").fetchall() == [(12.5,)]
    assert db.execute("SELECT run_id, stack, vllm, llm_drill_commit FROM runs").fetchall() == [
        ("r1", "embedded", None, None)]
    assert db.execute("SELECT plan, recorded_at FROM drill_runs").fetchall() == [(None, None)]
    assert db.execute("SELECT name, severity, detection_lag_s FROM alerts").fetchall() == [
        ("NodeDown", None, None)]
    assert db.execute("SELECT COUNT(*) FROM load_windows").fetchone() == (0,)
    db.close()


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    db = connect(tmp_path / "h.sqlite3")
    assert migrate(db) == CURRENT_VERSION
    assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (CURRENT_VERSION,)
    db.close()


def test_a_database_from_a_newer_llm_drill_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    connect(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_version VALUES (?, 0)", (CURRENT_VERSION + 1,))
    raw.commit()
    raw.close()
    with pytest.raises(HistoryError, match="newer than this llm-drill knows"):
        connect(path)


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_text("not a database, just text " * 100)
    with pytest.raises(HistoryError, match=str(path)):
        connect(path)


def test_a_failed_migration_leaves_the_database_at_its_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "h.sqlite3"
    connect(path, target=1).close()

    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE runs ADD COLUMN half_done TEXT")
        raise sqlite3.OperationalError("disk full, say")

    monkeypatch.setattr("harness.history.schema.MIGRATIONS", (MIGRATIONS[0], broken))
    with pytest.raises(HistoryError, match="disk full"):
        connect(path)
    raw = sqlite3.connect(path)
    columns = [r[1] for r in raw.execute("PRAGMA table_info(runs)")]
    assert "half_done" not in columns
    assert raw.execute("SELECT MAX(version) FROM schema_version").fetchone() == (1,)
    raw.close()
