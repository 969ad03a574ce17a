"""Runbook evidence from drill journals: which drills made which alerts fire, and how fast.

For every alert a drill saw firing (``journal.alerts`` with state ``firing``) the
alert's runbook gets one row: the drill, its detection lag (the measurement
``detection_lag_s.<AlertName>``, when the drill took it), its recovery time
(``recovery_s``), when it ran and its outcome. :func:`write_runbooks` renders the
runbooks with that evidence into the run directory, so the committed ``runbooks/``
stay the evidence-free baseline unless asked otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from harness.drill.journal import RECOVERY_KEY, Journal, read_journals
from harness.report.html import iso_time
from harness.report.runbooks import DrillEvidence, render_runbooks
from harness.stack.runstate import load_state
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


def run_stack_file(run_dir: Path, fallback: Path = DEFAULT_STACK_FILE) -> Path:
    """The stack file the run was started with (from its state file), else ``fallback``."""
    state = load_state(run_dir)
    recorded = Path(state.stack_file) if state is not None else None
    return recorded if recorded is not None and recorded.is_file() else fallback


def write_runbooks(run_dir: Path, out_dir: Path | None = None,
                   topology: Topology | None = None) -> tuple[Path, ...]:
    """Render every runbook with the run's evidence into ``out_dir``; return the paths.

    ``out_dir`` defaults to ``<run_dir>/runbooks``; ``topology`` to the run's stack file.
    """
    chosen = topology or load_topology(run_stack_file(run_dir))
    evidence = evidence_from_journals(read_journals(run_dir))
    return render_runbooks(chosen, evidence, out_dir or run_dir / RUNBOOKS_SUBDIR)
