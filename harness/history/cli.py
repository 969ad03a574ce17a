"""``llm-drill history``: trends per drill, ``import``, ``score`` and ``compare``.

    llm-drill history [--last N] [--drill NAME]       a table per drill, regressions flagged
    llm-drill history import [RUN_DIR ...] [--rebuild]  (re)build the database from journals
    llm-drill history score [--stack S] [--explain]   the resilience score, line by line
    llm-drill history compare RUN_A RUN_B             two runs' measurements side by side
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.clock import SystemClock
from harness.errors import ConfigError
from harness.history.compare import Delta, compare_runs
from harness.history.queries import RecordedRun, known_run_ids, recorded_runs, stacks
from harness.history.schema import connect, db_path
from harness.history.score import ScoreSettings, explain, stack_score
from harness.history.store import import_runs, read_run
from harness.history.trends import DAY_S, DrillTrend, TrendSettings, trends
from harness.runs import default_home


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("history", help="drill runs over time: trends, score, "
                                   "compare; the database is rebuilt from journals by import")
    parser.add_argument("--db", type=Path, default=None,
                        help="history database (default: <home>/history.sqlite3)")
    parser.add_argument("--last", type=int, default=TrendSettings.last,
                        help="runs per drill to look at (default %(default)s)")
    parser.add_argument("--drill", default=None, help="only this drill")
    parser.add_argument("--stack", dest="trend_stack", default=None,
                        help="only runs against this stack (embedded, or a stack file path)")
    parser.add_argument("--margin", type=float, default=TrendSettings.margin,
                        help="regression margin over the median (default %(default)s)")
    parser.add_argument("--fresh-days", type=float, default=TrendSettings.freshness_s / DAY_S,
                        help="a drill must have passed within this many days "
                             "(default %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when any drill is flagged (for CI or a cron job)")
    parser.set_defaults(func=cmd_trends)
    sub = parser.add_subparsers(dest="history_command")
    imp = sub.add_parser("import", help="record journals into the database (idempotent)")
    imp.add_argument("run_dirs", nargs="*", type=Path,
                     help="run directories (default: every run under the home)")
    imp.add_argument("--rebuild", action="store_true",
                     help="forget every recorded drill run first")
    imp.set_defaults(func=cmd_import)
    score = sub.add_parser("score", help="the resilience score of each stack")
    score.add_argument("--stack", default=None, help="only this stack (default: each)")
    score.add_argument("--explain", action="store_true", help="line by line")
    score.set_defaults(func=cmd_score)
    compare = sub.add_parser("compare", help="two runs' measurements side by side")
    compare.add_argument("run_a", help="run id (recorded) or run directory")
    compare.add_argument("run_b", help="run id (recorded) or run directory")
    compare.set_defaults(func=cmd_compare)


def _home(args: argparse.Namespace) -> Path:
    return default_home(getattr(args, "home", None))


def _db_file(args: argparse.Namespace) -> Path:
    chosen: Path | None = args.db
    return chosen if chosen is not None else db_path(_home(args))


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[sqlite3.Connection]:
    db = connect(_db_file(args))
    try:
        yield db
    finally:
        db.close()


def cmd_import(args: argparse.Namespace) -> int:
    chosen: list[Path] = args.run_dirs
    missing = [str(p) for p in chosen if not p.is_dir()]
    if missing:
        raise ConfigError(f"not a run directory: {', '.join(missing)}")
    result = import_runs(_db_file(args), chosen or None, home=_home(args), rebuild=args.rebuild)
    print(f"history: {result.recorded} drill runs recorded, {result.unchanged} unchanged "
          f"({_db_file(args)})")
    return 0


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch))


def _seconds(value: float | None, median: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if median is None else f"{value:.1f}s (median {median:.1f}s)"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def trends_table(rows: Sequence[DrillTrend]) -> Table:
    table = Table(title="llm-drill history (times UTC)")
    for column in ("drill", "runs", "pass rate", "recovery", "detection lag",
                   "error budget used", "last run", "last pass", "flags"):
        table.add_column(column)
    for t in rows:
        style = "red" if t.flags else None
        table.add_row(t.drill, str(t.runs), f"{t.passed}/{t.runs} ({t.pass_rate:.0%})",
                      _seconds(t.recovery_s, t.recovery_median_s),
                      _seconds(t.detection_lag_s, t.detection_lag_median_s),
                      _ratio(t.budget_used), _when(t.last_run_at), _when(t.last_pass_at),
                      "; ".join(t.flags) or "ok", style=style)
    return table


def cmd_trends(args: argparse.Namespace) -> int:
    settings = TrendSettings(last=args.last, margin=args.margin,
                             freshness_s=args.fresh_days * DAY_S)
    with _opened(args) as db:
        runs = recorded_runs(db, last=settings.last, drill=args.drill,
                             stack=args.trend_stack)
    if not runs:
        print(f"history: no drill runs recorded in {_db_file(args)}; "
              "run `llm-drill history import` or `pytest drills/`")
        return 1
    rows = trends(runs, SystemClock().wall(), settings)
    Console().print(trends_table(rows))
    return 1 if args.check and any(t.flags for t in rows) else 0


def cmd_score(args: argparse.Namespace) -> int:
    settings = ScoreSettings(last=args.last)
    with _opened(args) as db:
        chosen = [args.stack] if args.stack else stacks(db)
        runs = {stack: recorded_runs(db, last=settings.last, stack=stack) for stack in chosen}
    if not chosen:
        print(f"history: no drill runs recorded in {_db_file(args)}")
        return 1
    now = SystemClock().wall()
    for stack in chosen:
        score = stack_score(stack, runs[stack], now, settings)
        lines = explain(score) if args.explain else [f"{stack}: {score.value:.1f} / 100"]
        print("\n".join(lines))
    return 0


def _runs_of(db: sqlite3.Connection, given: str) -> list[RecordedRun]:
    """A run by its id in the database, else by its directory's journals."""
    as_dir = Path(given)
    if as_dir.is_dir():
        return read_run(as_dir)
    found = recorded_runs(db, last=None, run_ids=[given])
    if not found:
        known = known_run_ids(db)[-5:]
        raise ConfigError(f"no recorded run {given!r} (newest recorded: "
                          f"{', '.join(known) or 'none'}); give a run id or a run directory")
    return found


def _cell(value: float | str | None) -> str:
    if value is None:
        return "(no data)"
    return value if isinstance(value, str) else f"{value:g}"


def compare_table(a: str, b: str, deltas: Sequence[Delta]) -> Table:
    table = Table(title=f"{a} -> {b}")
    for column in ("drill", "measurement", a, b, "delta"):
        table.add_column(column)
    for d in deltas:
        change = d.change
        delta = "" if change is None else f"{change:+g}"
        if d.ratio is not None:
            delta += f" ({d.ratio:+.0%})"
        table.add_row(d.drill, d.key, _cell(d.a), _cell(d.b), delta)
    return table


def cmd_compare(args: argparse.Namespace) -> int:
    with _opened(args) as db:
        a, b = _runs_of(db, args.run_a), _runs_of(db, args.run_b)
    Console().print(compare_table(args.run_a, args.run_b, compare_runs(a, b)))
    return 0
