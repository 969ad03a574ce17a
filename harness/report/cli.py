"""``llm-drill report``: the HTML report and the runbooks with evidence, from a run's journals."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.drill.journal import JOURNAL_DIR
from harness.runs import default_home, runs_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report", help="write the HTML report and runbooks (with drill evidence) for a run")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="run directory (default: the newest run under <home>/runs "
                             "that has journals)")
    parser.add_argument("--out", type=Path, default=None,
                        help="report file (default: <run-dir>/report/index.html)")
    parser.add_argument("--runbooks-dir", type=Path, default=None,
                        help="where the runbooks go (default: <run-dir>/runbooks; "
                             "pass runbooks/ to update the repository's)")
    parser.set_defaults(func=cmd_report)


def has_journals(run_dir: Path) -> bool:
    return any((run_dir / JOURNAL_DIR).glob("*.json"))


def newest_run_with_journals(home: Path) -> Path | None:
    """Run ids start with their start time, so the newest run sorts last."""
    runs = runs_dir(home)
    candidates = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    return next((p for p in reversed(candidates) if has_journals(p)), None)


def _no_journals(where: str) -> int:
    print(f"llm-drill report: no drill journals {where}; run `pytest drills/` first",
          file=sys.stderr)
    return 1


def cmd_report(args: argparse.Namespace) -> int:
    run_dir: Path | None = args.run_dir
    if run_dir is None:
        home = default_home(getattr(args, "home", None))
        run_dir = newest_run_with_journals(home)
        if run_dir is None:
            return _no_journals(f"in any run under {runs_dir(home)}")
    if not has_journals(run_dir):
        return _no_journals(f"in {run_dir / JOURNAL_DIR}")
    return _write(args, run_dir)


def _write(args: argparse.Namespace, run_dir: Path) -> int:
    from harness.report.evidence import run_stack_file, write_runbooks
    from harness.report.html import build_report
    from harness.topology import DEFAULT_STACK_FILE, load_topology

    home = default_home(getattr(args, "home", None))
    report = build_report(run_dir, args.out, home=home)
    chosen = getattr(args, "stack_file", DEFAULT_STACK_FILE)
    # An explicit --stack-file wins; otherwise the one the run was started with.
    stack_file = chosen if chosen != DEFAULT_STACK_FILE else run_stack_file(run_dir, chosen)
    runbooks = write_runbooks(run_dir, args.runbooks_dir, load_topology(stack_file),
                              home=home)
    print(f"report:   {report}")
    for path in runbooks:
        print(f"runbook:  {path}")
    return 0
