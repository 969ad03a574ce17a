"""A drill's trend over its recorded runs, for the HTML report: recovery time and the
slowest alert's detection lag per run, each run's outcome marked, oldest on the left.

The runs come from the history (``recorded_runs``), so a report shows how this run
compares with the ones before it on the same stack. Fewer than ``MIN_RUNS`` runs, or no
matplotlib, gives a note instead of a picture.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from harness.history.queries import RecordedRun, recorded_runs
from harness.history.schema import connect, db_path
from harness.history.trends import by_drill, detection_lag
from harness.report.plots import MISSING_MATPLOTLIB, DrillPlot, canvas

MIN_RUNS = 3
LAST_RUNS = 20
OUTCOME_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "inconclusive": "#8250df"}
OTHER_COLOUR = "#9a6700"


def too_few(count: int) -> str:
    return (f"{count} recorded run{'' if count == 1 else 's'} of this drill: a trend needs "
            f"{MIN_RUNS}.")


def recorded_by_drill(home: Path, stack: str | None = None,
                      last: int = LAST_RUNS) -> dict[str, list[RecordedRun]]:
    """The newest ``last`` recorded runs of each drill under ``home`` (none without a
    history), oldest first."""
    path = db_path(home)
    if not path.is_file():
        return {}
    db = connect(path)
    try:
        runs = recorded_runs(db, last=last, stack=stack)
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {drill: sorted(group, key=lambda r: (r.started_at, r.run_id))
            for drill, group in by_drill(runs).items()}


def plot_trend(runs: Sequence[RecordedRun]) -> DrillPlot:
    """The trend as a PNG, oldest run first; a note when it cannot be drawn."""
    if len(runs) < MIN_RUNS:
        return DrillPlot(None, too_few(len(runs)))
    drawing = canvas()
    if drawing is None:
        return DrillPlot(None, MISSING_MATPLOTLIB)
    figure_type, agg = drawing
    fig = figure_type(figsize=(12, 2.6), dpi=90, layout="constrained")
    agg(fig)
    ax = fig.subplots()
    xs = list(range(len(runs)))
    for label, values in (("recovery", [r.measurements.get("recovery_s") for r in runs]),
                          ("slowest detection lag", [detection_lag(r) for r in runs])):
        points = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label,
                    linewidth=1.4)
    for x, run in zip(xs, runs, strict=True):
        ax.axvspan(x - 0.45, x + 0.45, color=OUTCOME_COLOURS.get(run.outcome, OTHER_COLOUR),
                   alpha=0.12, linewidth=0)
    ax.set_xticks(xs, [f"{r.run_id}\n{r.outcome}" for r in runs], fontsize=7)
    ax.set_ylabel("seconds", fontsize=9)
    ax.set_title(f"last {len(runs)} recorded runs (band colour: outcome)", loc="left",
                 fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return DrillPlot(buffer.getvalue())
