"""Render one runbook per alert, ``runbooks/<AlertName>.md``, from the topology.

The prose lives in ``runbooks/templates/catalogue.yml`` (jinja strings; thresholds
and windows come from the topology, so a runbook never disagrees with its rule)
and the page layout in ``runbooks/templates/runbook.md.j2``. The rule's
expression, severity and ``for:`` are read back from the rendered rules. Drill
evidence (drill name, detection lag, recovery time), when given, fills the
"Drill evidence" section.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2

from harness.config import load_yaml
from harness.errors import ConfigError
from harness.files import write_atomic
from harness.observe.rules import ALERT_CATALOGUE, RuleSpec, RuleWindows, render_rules, rule_specs
from harness.topology import PROJECT_ROOT, Topology

RUNBOOKS_DIR = PROJECT_ROOT / "runbooks"
TEMPLATES_DIR = RUNBOOKS_DIR / "templates"
CATALOGUE_FILE = TEMPLATES_DIR / "catalogue.yml"


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
    """What one drill measured about an alert."""

    drill: str
    detection_lag_s: float | None = None
    recovery_s: float | None = None
    run_at: str = ""
    notes: str = ""


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)  # Markdown, not HTML


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
                   evidence: Sequence[DrillEvidence] = ()) -> str:
    """One runbook page as Markdown."""
    env = _environment()
    context = {"t": topology, "th": topology.thresholds, "w": RuleWindows.from_topology(topology)}
    mine = [r for r in rules if r.alert == text.name]
    if not mine:
        raise ConfigError(f"no rule defines alert {text.name!r}")
    return env.get_template("runbook.md.j2").render(
        alert=_resolve(env, text, context), exprs=[r.expr for r in mine],
        severity=" / ".join(sorted({r.severity for r in mine})),
        for_s=" / ".join(sorted({f"{r.for_s:g}s" for r in mine})),
        evidence=list(evidence), seconds=_seconds)


def render_runbooks(topology: Topology,
                    evidence: Mapping[str, Sequence[DrillEvidence]] | None = None,
                    out_dir: Path = RUNBOOKS_DIR) -> tuple[Path, ...]:
    """Write ``<out_dir>/<AlertName>.md`` for every alert (atomically); return the paths."""
    rules = rule_specs(render_rules(topology))
    written = []
    for text in load_catalogue().alerts:
        page = render_runbook(topology, text, rules, (evidence or {}).get(text.name, ()))
        written.append(write_atomic(out_dir / f"{text.name}.md", page))
    return tuple(written)
