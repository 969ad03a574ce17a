"""The HTML report: one self-contained page built from a run's drill journals.

``build_report(run_dir)`` reads ``<run_dir>/journals/*.json`` and writes
``<run_dir>/report/index.html`` (atomically): a summary table, then per drill its
verdicts, measurements, alerts, load windows, error and timeline plot (a PNG inlined
as a data URI). No JavaScript, inline CSS, journal text escaped by jinja2's autoescape.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from harness.drill.journal import JOURNAL_DIR, RECOVERY_KEY, Journal, read_journals
from harness.errors import ConfigError
from harness.files import write_atomic
from harness.history.queries import RecordedRun
from harness.render.templates import environment
from harness.report.plots import DrillPlot, plot_drill
from harness.report.trend_plots import plot_trend, recorded_by_drill

TEMPLATES_DIR = Path(__file__).parent / "templates"
REPORT_FILE = Path("report") / "index.html"

Plotter = Callable[[Journal], DrillPlot]


@dataclass(frozen=True)
class DrillView:
    """One drill as the template shows it."""

    journal: Journal
    anchor: str
    held: int
    failed: int
    plot_uri: str | None
    plot_note: str
    trend_uri: str | None = None
    trend_note: str = ""

    @property
    def recovery_s(self) -> float | None:
        return self.journal.measurements.get(RECOVERY_KEY)

    @property
    def other_measurements(self) -> dict[str, float]:
        return {k: v for k, v in self.journal.measurements.items() if k != RECOVERY_KEY}


@dataclass(frozen=True)
class RunView:
    run_dir: Path
    run_ids: tuple[str, ...]
    generated_at: str
    drills: tuple[DrillView, ...]

    def count(self, outcome: str) -> int:
        return sum(d.journal.outcome == outcome for d in self.drills)

    @property
    def suite_wall_s(self) -> float | None:
        """From the first drill's start to the last one's end."""
        if not self.drills:
            return None
        return (max(d.journal.ended_at for d in self.drills)
                - min(d.journal.started_at for d in self.drills))


def iso_time(at: float) -> str:
    """Wall-clock seconds as ISO 8601 UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def measurement(key: str, value: float) -> str:
    """Keys named ``*_s`` (or ``*_s.<what>``) are durations; the rest are counts or ratios."""
    return seconds(value) if key.endswith("_s") or "_s." in key else f"{value:g}"


def since(at: float, origin: float) -> str:
    """A moment relative to the drill's start, e.g. ``+12.3 s``."""
    return f"{at - origin:+.1f} s"


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def drill_anchor(index: int, drill: str) -> str:
    """The report's id for the ``index``-th journal (in ``read_journals`` order)."""
    return f"drill-{index}-" + "".join(c if c.isalnum() else "-" for c in drill)


def drill_view(index: int, journal: Journal, plot: Plotter = plot_drill,
               trend: DrillPlot | None = None) -> DrillView:
    drawn = plot(journal)
    held = sum(v.ok for v in journal.verdicts)
    return DrillView(journal=journal, anchor=drill_anchor(index, journal.drill), held=held,
                     failed=len(journal.verdicts) - held,
                     plot_uri=png_data_uri(drawn.png) if drawn.png else None,
                     plot_note=drawn.note,
                     trend_uri=png_data_uri(trend.png) if trend and trend.png else None,
                     trend_note=trend.note if trend else "")


def run_view(run_dir: Path, journals: Sequence[Journal], plot: Plotter = plot_drill,
             history: Mapping[str, Sequence[RecordedRun]] | None = None) -> RunView:
    """The run as the template shows it; with ``history`` (recorded runs by drill), each
    drill also gets its trend over them."""
    def trend(drill: str) -> DrillPlot | None:
        return None if history is None else plot_trend(history.get(drill, ()))

    return RunView(run_dir=run_dir, run_ids=tuple(dict.fromkeys(j.run_id for j in journals)),
                   generated_at=iso_time(time.time()),
                   drills=tuple(drill_view(i, j, plot, trend(j.drill))
                                for i, j in enumerate(journals)))


@cache
def _environment() -> jinja2.Environment:
    env = environment(TEMPLATES_DIR, autoescape=True)  # HTML: journal text is escaped
    env.filters.update(seconds=seconds, iso_time=iso_time)
    env.globals.update(measurement=measurement, since=since)
    return env


def render_report(view: RunView) -> str:
    return _environment().get_template("report.html.j2").render(run=view)


def build_report(run_dir: Path, out: Path | None = None, *, plot: Plotter = plot_drill,
                 home: Path | None = None) -> Path:
    """Write the report for every journal in ``run_dir``; return its path. With ``home``,
    each drill's trend over its runs recorded in that home's history is drawn too.

    Raises :class:`ConfigError` when the run directory holds no journals.
    """
    journals = read_journals(run_dir)
    if not journals:
        raise ConfigError("no drill journals to report on", path=str(run_dir / JOURNAL_DIR))
    history = recorded_by_drill(home) if home is not None else None
    page = render_report(run_view(run_dir, journals, plot, history))
    return write_atomic(out or run_dir / REPORT_FILE, page)
