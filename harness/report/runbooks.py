"""Render one runbook per alert, ``<out_dir>/<AlertName>.md``, from the topology.

The prose lives in ``harness/report/templates/catalogue.yml`` (package data; jinja
strings: thresholds and windows come from the topology, so a runbook never disagrees
with its rule) and the page layout in ``harness/report/templates/runbook.md.j2``. The rule's
expression, severity and ``for:`` are read back from the rendered rules. Drill
evidence (drill name, detection lag, recovery time), when given, fills the
"Drill evidence" section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from harness.config import load_yaml
from harness.errors import ConfigError
from harness.files import write_atomic
from harness.render.rules import ALERT_CATALOGUE, RuleSpec, RuleWindows, render_rules, rule_specs
from harness.render.templates import environment
from harness.topology import Topology

TEMPLATES_DIR = Path(str(resources.files("harness.report") / "templates"))
CATALOGUE_FILE = TEMPLATES_DIR / "catalogue.yml"
#: Where ``render_runbooks`` writes by default: ``runbooks/`` under the working directory
#: (the repository's committed runbooks when run from a checkout).
RUNBOOKS_DIR = Path("runbooks")


@dataclass(frozen=True)
class AlertText:
    name: str
    meaning: str
    causes: tuple[str, ...]
    checks: tuple[str, ...]
    remediation: tuple[str, ...]


@dataclass(frozen=True)
class Catalogue:
    alerts: tuple[AlertText, ...]


@dataclass(frozen=True)
class DrillEvidence:
    """What a drill measured about an alert: over one run (from its journal), or over
    its last ``runs`` recorded runs (from the history: then the lag and recovery are
    medians, ``detection_lag_p95_s`` the 95th percentile, ``run_at`` the newest run)."""

    drill: str
    detection_lag_s: float | None = None
    recovery_s: float | None = None
    run_at: str = ""
    notes: str = ""
    runs: int = 1
    detection_lag_p95_s: float | None = None
    report: str = ""  # the newest run's HTML report, when it exists


#: What on-call writes into a runbook lives between these markers and is carried over
#: when the runbook is rendered again; everything else is generated.
HAND_WRITTEN_BEGIN = "<!-- hand-written: kept when this runbook is regenerated -->"
HAND_WRITTEN_END = "<!-- end hand-written -->"
HAND_WRITTEN_DEFAULT = "_Nothing yet. What on-call learned about this alert goes here._"


def hand_written(page: str) -> str | None:
    """The hand-written block of a rendered runbook, if it has one."""
    begin = page.find(HAND_WRITTEN_BEGIN)
    end = page.find(HAND_WRITTEN_END, begin)
    if begin < 0 or end < 0:
        return None
    return page[begin + len(HAND_WRITTEN_BEGIN):end].strip("\n")


def _environment() -> jinja2.Environment:
    return environment(TEMPLATES_DIR, autoescape=False)  # Markdown, not HTML


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    catalogue = load_yaml(path, Catalogue)
    missing = sorted(set(ALERT_CATALOGUE) - {a.name for a in catalogue.alerts})
    if missing:
        raise ConfigError(f"no runbook text for {', '.join(missing)}", path=str(path))
    return catalogue


def _resolve(env: jinja2.Environment, text: AlertText, context: Mapping[str, object]) -> AlertText:
    def fill(value: str) -> str:
        return env.from_string(value).render(**context).strip()

    return AlertText(name=text.name, meaning=fill(text.meaning),
                     causes=tuple(fill(c) for c in text.causes),
                     checks=tuple(fill(c) for c in text.checks),
                     remediation=tuple(fill(r) for r in text.remediation))


def render_runbook(topology: Topology, text: AlertText, rules: Sequence[RuleSpec],
                   evidence: Sequence[DrillEvidence] = (), notes: str | None = None) -> str:
    """One runbook page as Markdown; ``notes``: its hand-written block (kept as is)."""
    env = _environment()
    context = {"t": topology, "th": topology.thresholds, "w": RuleWindows.from_topology(topology)}
    mine = [r for r in rules if r.alert == text.name]
    if not mine:
        raise ConfigError(f"no rule defines alert {text.name!r}")
    return env.get_template("runbook.md.j2").render(
        alert=_resolve(env, text, context), exprs=[r.expr for r in mine],
        severity=" / ".join(sorted({r.severity for r in mine})),
        for_s=" / ".join(sorted({f"{r.for_s:g}s" for r in mine})),
        evidence=list(evidence), seconds=_seconds, begin=HAND_WRITTEN_BEGIN,
        end=HAND_WRITTEN_END, notes=notes if notes is not None else HAND_WRITTEN_DEFAULT)


def render_runbooks(topology: Topology,
                    evidence: Mapping[str, Sequence[DrillEvidence]] | None = None,
                    out_dir: Path = RUNBOOKS_DIR) -> tuple[Path, ...]:
    """Write ``<out_dir>/<AlertName>.md`` for every alert (atomically); return the paths.
    A page already there keeps its hand-written block."""
    rules = rule_specs(render_rules(topology))
    written = []
    for text in load_catalogue().alerts:
        path = out_dir / f"{text.name}.md"
        page = render_runbook(topology, text, rules, (evidence or {}).get(text.name, ()),
                              notes=_kept_notes(path))
        written.append(write_atomic(path, page))
    return tuple(written)


def _kept_notes(path: Path) -> str | None:
    try:
        return hand_written(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
