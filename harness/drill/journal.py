"""The drill journal: what one drill did, saw and concluded, as JSON in the run directory.

One file per drill run, ``<run_dir>/journals/<drill>.json``, written atomically. Reports
and runbooks are built from journals only, so a game day's evidence is just these files.
Privacy: counts and timings, never prompt or completion text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.files import write_atomic

JOURNAL_DIR = "journals"


@dataclass(frozen=True)
class Verdict:
    """One property the drill asserted, and whether it held."""

    property: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class PhaseMark:
    """A moment in the drill: steady, fault applied, fault reverted, recovered, ..."""

    name: str
    at: float  # wall-clock seconds since the epoch


@dataclass(frozen=True)
class AlertRecord:
    name: str
    state: str  # pending | firing | resolved | notified
    at: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadSummary:
    """Client-side numbers for one window of the drill (p50/p95 in seconds)."""

    window: str
    requests: int
    ok: int
    errors: dict[str, int]
    ttft_p50_s: float | None
    ttft_p95_s: float | None
    e2e_p95_s: float | None
    tokens_per_s: float
    goodput_per_s: float
    retries: int
    client_stalled: int = 0  # requests whose timeout the client's own stall ate


RECOVERY_KEY = "recovery_s"  # the measurement every drill reports as its recovery time


@dataclass(frozen=True)
class Journal:
    drill: str
    run_id: str
    started_at: float
    ended_at: float
    outcome: str  # passed | failed | inconclusive (fault or precondition unproven) | aborted
    phases: tuple[PhaseMark, ...] = ()
    measurements: dict[str, float] = field(default_factory=dict)
    verdicts: tuple[Verdict, ...] = ()
    alerts: tuple[AlertRecord, ...] = ()
    load: tuple[LoadSummary, ...] = ()
    timeline: tuple[dict[str, Any], ...] = ()  # observe.timeline samples, as JSON objects
    error: str = ""

    @property
    def wall_s(self) -> float:
        return self.ended_at - self.started_at

    def path_in(self, run_dir: Path) -> Path:
        return run_dir / JOURNAL_DIR / f"{self.drill}.json"


def write_journal(journal: Journal, run_dir: Path) -> Path:
    return write_atomic(journal.path_in(run_dir), json.dumps(asdict(journal), indent=1))


def read_journal(path: Path) -> Journal:
    raw = json.loads(path.read_text())
    return Journal(
        drill=raw["drill"], run_id=raw["run_id"], started_at=raw["started_at"],
        ended_at=raw["ended_at"], outcome=raw["outcome"],
        phases=tuple(PhaseMark(**p) for p in raw.get("phases", ())),
        measurements=dict(raw.get("measurements", {})),
        verdicts=tuple(Verdict(**v) for v in raw.get("verdicts", ())),
        alerts=tuple(AlertRecord(**a) for a in raw.get("alerts", ())),
        load=tuple(LoadSummary(**s) for s in raw.get("load", ())),
        timeline=tuple(raw.get("timeline", ())),
        error=raw.get("error", ""),
    )


def read_journals(run_dir: Path) -> tuple[Journal, ...]:
    folder = run_dir / JOURNAL_DIR
    if not folder.is_dir():
        return ()
    return tuple(read_journal(p) for p in sorted(folder.glob("*.json")))


def junit_properties(journal: Journal) -> list[tuple[str, object]]:
    """A drill's journal as JUnit XML properties: outcome, each verdict, each measurement."""
    prefix = f"llm-drill.{journal.drill}"
    return [(f"{prefix}.outcome", journal.outcome),
            *((f"{prefix}.verdict.{v.property}", "held" if v.ok else f"failed: {v.detail}")
              for v in journal.verdicts),
            *((f"{prefix}.{key}", value) for key, value in journal.measurements.items())]
