"""Benchmark of the history database and the scheduler core (no stack needed).

    .venv/bin/python benchmarks/bench_history.py [--runs 10000] [--drills 5] [--writers 4]

(a) insert      10,000 drill runs (``--runs``) as journals in run directories, recorded
                by ``import_runs`` (read, hash, one transaction each), one writer; then
                the same number again by ``--writers`` processes at once
(b) re-import   the same journals again: every one unchanged (the idempotency cost)
(c) queries     the trend query (last N runs per drill, with measurements, verdicts,
                alerts, load) + trends + score, median of 5, for N = 10 and 100
(d) size        the database file after a checkpoint, bytes per drill run
(e) scheduler   a simulated day of ``*/5 * * * *`` with 2-minute runs (Forbid) on an
                injected clock: fire times, start-time error, wall time to simulate

Journals are realistic in shape (8 measurements, 5 verdicts, 4 alert records, 3 load
windows) with a short timeline (20 samples; real ones have a few hundred, which only
changes the file reading, not the database). Prints markdown tables (docs/gameday.md
quotes them).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.drill.journal import AlertRecord, Journal, LoadSummary, Verdict, write_journal
from harness.gameday.schedule import Scheduler, ScheduleSpec
from harness.history.queries import recorded_runs
from harness.history.schema import connect, db_path
from harness.history.score import stack_score
from harness.history.store import import_runs
from harness.history.trends import trends
from harness.runs import run_dir_for

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DRILLS = ("node_kill", "cancel_storm", "kv_pressure", "gateway_cut", "timeout_spike",
          "slow_canary", "oom_node", "router_restart")


def make_journal(drill: str, run_id: str, i: int) -> Journal:
    started = T0 + i * 600.0
    lag = 3.0 + (i % 7) * 0.5
    alerts = tuple(AlertRecord(name, state, started + 10 + k, {"severity": sev})
                   for k, (name, sev) in enumerate((("NodeDown", "critical"),
                                                    ("GatewayBackendDown", "warning")))
                   for state in ("firing", "notified"))
    measurements = {"recovery_s": 10.0 + (i % 11), "detection_lag_s.NodeDown": lag,
                    "notification_lag_s.NodeDown": 1.2, "detection_lag_s.GatewayBackendDown":
                    lag + 1, "notification_lag_s.GatewayBackendDown": 1.4,
                    "ttft_p95_fault_s": 0.4, "goodput_ratio": 0.97, "kv_release_s": 2.5}
    verdicts = tuple(Verdict(p, ok=(i % 13 != 0 or k != 1)) for k, p in enumerate((
        "steady state before the fault", "front door keeps answering",
        "NodeDown goes firing", "NodeDown delivered to oncall", "recovered within 60s")))
    load = tuple(LoadSummary(w, 200, 196, {"5xx": 4}, 0.1, 0.3, 1.2, 80.0, 11.0, 2)
                 for w in ("steady", "fault", "recovery"))
    timeline = tuple({"at": started + s, "nodes": [{"name": "node1", "up": True}]}
                     for s in range(20))
    return Journal(drill=drill, run_id=run_id, started_at=started, ended_at=started + 90,
                   outcome="passed" if i % 13 else "failed", measurements=measurements,
                   verdicts=verdicts, alerts=alerts, load=load, timeline=timeline)


def make_runs(home: Path, runs: int, drills: int, prefix: str = "r") -> list[Path]:
    """``runs`` drill runs in run directories of ``drills`` drills each."""
    dirs = []
    for n in range(runs // drills):
        run_id = f"{prefix}{n:06d}"
        run_dir = run_dir_for(home, run_id)
        for d in range(drills):
            write_journal(make_journal(DRILLS[d % len(DRILLS)], run_id, n), run_dir)
        dirs.append(run_dir)
    return dirs


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_of(action: Callable[[], object], repeat: int = 5) -> float:
    return statistics.median(timed(action) for _ in range(repeat))


def trend_query(db_file: Path, last: int) -> None:
    db = connect(db_file)
    try:
        runs = recorded_runs(db, last=last)
    finally:
        db.close()
    trends(runs, T0 + 1e7)
    stack_score("embedded", runs, T0 + 1e7)


def bench_insert(root: Path, runs: int, drills: int, writers: int) -> list[tuple[str, str]]:
    home = root / "single"
    dirs = make_runs(home, runs, drills)
    db_file = db_path(home)
    recorded = runs // drills * drills
    single = timed(lambda: import_runs(db_file, dirs))
    again = timed(lambda: import_runs(db_file, dirs))
    rows = [("insert, 1 writer", f"{single:.1f} s ({single / recorded * 1e3:.2f} ms/run, "
                                 f"{recorded / single:.0f} runs/s)"),
            ("re-import, all unchanged", f"{again:.1f} s ({again / recorded * 1e3:.2f} ms/run)")]
    for last in (10, 100):
        query = median_of(partial(trend_query, db_file, last))
        rows.append((f"trend query + trends + score, last {last} per drill",
                     f"{query * 1e3:.0f} ms"))
    db = sqlite3.connect(db_file)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = db_file.stat().st_size
    rows.append(("database size", f"{size / 2**20:.1f} MiB ({size / recorded:.0f} B/run)"))
    rows += bench_concurrent(root / "concurrent", runs, drills, writers)
    return rows


def bench_concurrent(home: Path, runs: int, drills: int, writers: int) -> list[tuple[str, str]]:
    batches = [make_runs(home, runs // writers, drills, prefix=f"w{w}-") for w in range(writers)]
    recorded = sum(len(b) for b in batches) * drills
    db_file = db_path(home)
    forked = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(writers, mp_context=forked) as pool:
        wall = timed(lambda: list(pool.map(import_runs, [db_file] * writers, batches)))
    db = sqlite3.connect(db_file)
    count = db.execute("SELECT COUNT(*) FROM drill_runs").fetchone()[0]
    db.close()
    return [(f"insert, {writers} writer processes at once",
             f"{wall:.1f} s ({recorded / wall:.0f} runs/s; {count} rows, expected {recorded})")]


class SimClock:
    """Wall time that moves only when slept on."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    async def sleep_async(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


class SimRun:
    def __init__(self, clock: SimClock, ends_at: float) -> None:
        self.clock, self.ends_at = clock, ends_at

    def poll(self) -> str | None:
        return "passed" if self.clock.wall() >= self.ends_at else None


def bench_scheduler(root: Path) -> list[tuple[str, str]]:
    clock = SimClock(T0)
    starts: list[tuple[float, float]] = []

    def runner(plan: str, scheduled_at: float) -> SimRun:
        starts.append((scheduled_at, clock.wall()))
        return SimRun(clock, clock.wall() + 120)

    spec = ScheduleSpec(name="every-five", plan="p.yaml", schedule="*/5 * * * *")
    with Scheduler(spec, runner, clock, root / "sched") as scheduler:
        wall = timed(lambda: scheduler.run(until=T0 + 86_400))
    errors = [started - scheduled for scheduled, started in starts]
    return [("scheduler: fire times in a simulated day (*/5, 2-min runs)", str(len(starts))),
            ("scheduler: start-time error, max", f"{max(errors):.3f} s"),
            ("scheduler: wall time to simulate the day", f"{wall:.2f} s")]


def table(rows: Sequence[tuple[str, str]]) -> str:
    lines = ["| what | measured |", "| --- | --- |"]
    lines += [f"| {what} | {value} |" for what, value in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="drill runs to record")
    parser.add_argument("--drills", type=int, default=5, help="drills per run directory")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        rows = bench_insert(Path(tmp), args.runs, args.drills, args.writers)
        rows += bench_scheduler(Path(tmp))
    print(f"history: {args.runs} drill runs ({args.drills} drills per run directory)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
