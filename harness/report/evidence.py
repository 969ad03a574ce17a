"""Runbook evidence from drill journals: which drills made which alerts fire, and how fast.

For every alert a drill saw firing (``journal.alerts`` with state ``firing``) the
alert's runbook gets one row: the drill, its detection lag (the measurement
``detection_lag_s.<AlertName>``, when the drill took it), its recovery time
(``recovery_s``), when it ran and its outcome. With a history, the rows come from it
instead: per drill, its last recorded runs (detection lag p50 / p95, recovery p50,
outcomes, the newest run's report). :func:`write_runbooks` renders the runbooks with
that evidence into the run directory, so the committed ``runbooks/`` stay the
evidence-free baseline unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.drill.journal import RECOVERY_KEY, Journal, read_journals
from harness.history.queries import DEFAULT_LAST, AlertRun, alert_runs
from harness.history.schema import connect, db_path
from harness.load.stats import percentile
from harness.report.html import iso_time
from harness.report.runbooks import DrillEvidence, render_runbooks
from harness.runs import load_state, runs_dir
from harness.topology import DEFAULT_STACK_FILE, Topology, load_topology

FIRING = "firing"
LAG_PREFIX = "detection_lag_s."
RUNBOOKS_SUBDIR = "runbooks"


def fired_alerts(journal: Journal) -> tuple[str, ...]:
    """Names of the alerts the drill saw firing, once each, in the order first seen."""
    return tuple(dict.fromkeys(a.name for a in journal.alerts if a.state == FIRING))


def drill_evidence(journal: Journal, alert: str) -> DrillEvidence:
    return DrillEvidence(drill=journal.drill,
                         detection_lag_s=journal.measurements.get(LAG_PREFIX + alert),
                         recovery_s=journal.measurements.get(RECOVERY_KEY),
                         run_at=iso_time(journal.started_at), notes=journal.outcome)


def evidence_from_journals(journals: Iterable[Journal]) -> dict[str, list[DrillEvidence]]:
    """Alert name -> one :class:`DrillEvidence` per drill that saw it firing."""
    evidence: dict[str, list[DrillEvidence]] = {}
    for journal in journals:
        for alert in fired_alerts(journal):
            evidence.setdefault(alert, []).append(drill_evidence(journal, alert))
    return evidence


def evidence_from_history(runs: Iterable[AlertRun],
                          home: Path | None = None) -> dict[str, list[DrillEvidence]]:
    """Alert name -> one row per drill over its recorded runs (``alert_runs``: newest
    first): how many, the newest, the detection lag's p50 and p95 and the recovery's
    p50 over the runs that measured them, the outcomes, and the newest run's report
    (under ``home``, when it is there). Deterministic: rows sorted by drill."""
    grouped: dict[tuple[str, str], list[AlertRun]] = {}
    for run in runs:
        grouped.setdefault((run.alert, run.drill), []).append(run)
    evidence: dict[str, list[DrillEvidence]] = {}
    for (alert, drill), mine in sorted(grouped.items()):
        lags = [r.detection_lag_s for r in mine if r.detection_lag_s is not None]
        recoveries = [r.recovery_s for r in mine if r.recovery_s is not None]
        newest = max(mine, key=lambda r: (r.started_at, r.run_id))
        evidence.setdefault(alert, []).append(DrillEvidence(
            drill=drill, runs=len(mine), run_at=iso_time(newest.started_at),
            detection_lag_s=percentile(lags, 50) if lags else None,
            detection_lag_p95_s=percentile(lags, 95) if lags else None,
            recovery_s=percentile(recoveries, 50) if recoveries else None,
            notes=_outcomes(mine), report=_report_of(home, newest.run_id)))
    return evidence


def _outcomes(runs: Sequence[AlertRun]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.outcome] = counts.get(run.outcome, 0) + 1
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))


def _report_of(home: Path | None, run_id: str) -> str:
    if home is None:
        return ""
    page = runs_dir(home) / run_id / "report" / "index.html"
    return str(page) if page.is_file() else ""


def history_evidence(home: Path, last: int = DEFAULT_LAST) -> dict[str, list[DrillEvidence]]:
    """The evidence of the last ``last`` recorded runs per alert and drill in ``home``'s
    history; empty when there is no history yet."""
    path = db_path(home)
    if not path.is_file():
        return {}
    db = connect(path)
    try:
        return evidence_from_history(alert_runs(db, last=last), home)
    finally:
        db.close()


def run_stack_file(run_dir: Path, fallback: Path = DEFAULT_STACK_FILE) -> Path:
    """The stack file the run was started with (from its state file), else ``fallback``."""
    state = load_state(run_dir)
    recorded = Path(state.stack_file) if state is not None else None
    return recorded if recorded is not None and recorded.is_file() else fallback


def write_runbooks(run_dir: Path, out_dir: Path | None = None,
                   topology: Topology | None = None,
                   home: Path | None = None) -> tuple[Path, ...]:
    """Render every runbook with evidence into ``out_dir``; return the paths.

    The evidence is the history's (the last runs of each drill per alert) when ``home``
    has one that saw an alert fire, else this run's journals. ``out_dir`` defaults to
    ``<run_dir>/runbooks``; ``topology`` to the run's stack file."""
    chosen = topology or load_topology(run_stack_file(run_dir))
    evidence = history_evidence(home) if home is not None else {}
    if not evidence:
        evidence = evidence_from_journals(read_journals(run_dir))
    return render_runbooks(chosen, evidence, out_dir or run_dir / RUNBOOKS_SUBDIR)
