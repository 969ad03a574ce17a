"""Render the stack's alert rules and Alertmanager configuration from the topology.

``harness/render/templates/alerts.rules.yml.j2`` and ``alertmanager.yml.j2`` hold the
shape; every threshold and duration comes from :class:`~harness.topology.Topology`
(``thresholds`` and the Prometheus / Alertmanager specs), so the YAML carries no
literal threshold. Windows derived from the scrape interval are computed here,
in :class:`RuleWindows`, and documented in ``docs/alerts.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import ConfigError
from harness.files import write_atomic
from harness.render.templates import render
from harness.topology import Topology

RULES_TEMPLATE = "alerts.rules.yml.j2"
ALERTMANAGER_TEMPLATE = "alertmanager.yml.j2"

#: The alert catalogue (DESIGN.md); names are the runbook keys.
ALERT_CATALOGUE: tuple[str, ...] = (
    "TTFTHigh", "TPSDrop", "NodeDown", "NodeStalled", "EngineUnhealthy", "NodeOOMKilled",
    "KVCacheSaturated", "KVCacheNotReleased", "QueueBacklog", "ErrorRateHigh",
    "GatewayBackendDown", "CircuitOpen", "FrontDoorBackendDown", "FrontDoorRestarted",
    "FrontDoorShedding", "CanaryRolledBack",
)
SEVERITIES: tuple[str, ...] = ("critical", "warning")
GROUP_BY: tuple[str, ...] = ("alertname", "severity", "node", "gateway", "worker", "server",
                             "type", "source")


@dataclass(frozen=True)
class RuleWindows:
    """Durations the rules use, derived from the topology (Prometheus duration strings,
    except ``refused_within`` and ``just_started``: plain seconds, compared with
    ``scrape_duration_seconds`` and an uptime)."""

    for_short: str
    for_long: str
    rate: str
    event: str
    baseline_offset: str
    node_hung: str
    node_stall: str
    #: A failed scrape quicker than this was refused (nothing listens), not timed out.
    refused_within: str
    #: A process up for less than this (plain seconds) was started just now: a rate
    #: window and at least ten scrapes, so that many evaluations see it, and short
    #: enough that the alert is gone soon (every drill's steady state waits it out).
    just_started: str = "10"
    #: How far back a restart (HAProxy's uptime going down) is looked for.
    restart_seen: str = "5m"

    @classmethod
    def from_topology(cls, topology: Topology) -> RuleWindows:
        th = topology.thresholds
        scrape_s = topology.prometheus.scrape_interval_s
        rate_s = max(10, 4 * scrape_s)
        event_s = max(30, 3 * rate_s)
        baseline_s = max(60, 6 * rate_s)
        refused_within = topology.prometheus.scrape_timeout_s / 2
        return cls(for_short=f"{th.for_short_s}s", for_long=f"{th.for_long_s}s",
                   rate=f"{rate_s}s", event=f"{event_s}s", baseline_offset=f"{baseline_s}s",
                   node_hung=f"{th.node_hung_s}s", node_stall=f"{th.node_stall_s}s",
                   refused_within=f"{refused_within:g}",
                   just_started=f"{max(rate_s, 10 * scrape_s):g}")


@dataclass(frozen=True)
class RuleSpec:
    """One alerting rule as rendered: what drills need to reason about timing."""

    alert: str
    expr: str
    for_s: float
    severity: str
    runbook: str


def _prom_template(inner: str) -> str:
    """Write Prometheus' own ``{{ ... }}`` templating from inside a jinja template."""
    return "{{ " + inner + " }}"


def render_rules(topology: Topology) -> str:
    """The Prometheus alert rules file for ``topology``."""
    return render(RULES_TEMPLATE, topology, prom=_prom_template, th=topology.thresholds,
                  w=RuleWindows.from_topology(topology),
                  cb_failure_threshold=topology.gateway_policy.cb_failure_threshold,
                  fall=topology.front_door.fall)


def render_alertmanager(topology: Topology, token_file: str | None = None) -> str:
    """The Alertmanager configuration: every severity routed to the harness webhook,
    sending the bearer token read from ``token_file`` when one is given."""
    am = topology.alertmanager
    resolve_s = max(60, 2 * am.repeat_interval_s)
    return render(ALERTMANAGER_TEMPLATE, topology, am=am, severities=SEVERITIES,
                  group_by=GROUP_BY, webhook_base=topology.webhook_url,
                  resolve_timeout=f"{resolve_s}s", token_file=token_file)


def write_rules(topology: Topology, path: Path) -> Path:
    """Render the rules into ``path`` atomically (temp file + rename)."""
    return write_atomic(path, render_rules(topology))


def write_alertmanager(topology: Topology, path: Path) -> Path:
    """Render the Alertmanager configuration into ``path`` atomically."""
    return write_atomic(path, render_alertmanager(topology))


def rule_specs(rules_text: str) -> tuple[RuleSpec, ...]:
    """Parse a rendered rules file into :class:`RuleSpec` values (alerting rules only)."""
    try:
        doc = yaml.safe_load(rules_text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"rendered rules are not valid YAML: {exc}") from exc
    specs: list[RuleSpec] = []
    for group in doc.get("groups", []):
        specs += [_spec(rule) for rule in group.get("rules", []) if "alert" in rule]
    return tuple(specs)


def _spec(rule: dict[str, object]) -> RuleSpec:
    labels = rule.get("labels") or {}
    annotations = rule.get("annotations") or {}
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    return RuleSpec(alert=str(rule["alert"]), expr=str(rule["expr"]),
                    for_s=parse_duration(str(rule.get("for", "0s"))),
                    severity=str(labels.get("severity", "")),
                    runbook=str(annotations.get("runbook", "")))


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in a simple Prometheus duration (``500ms``, ``2s``, ``5m``, ``1h``)."""
    for unit in sorted(_UNITS, key=len, reverse=True):
        number = text.removesuffix(unit)
        if number != text:
            try:
                return float(number) * _UNITS[unit]
            except ValueError:
                break
    raise ConfigError(f"not a Prometheus duration: {text!r}")


def for_seconds(topology: Topology, alert: str) -> float:
    """The longest ``for:`` any rule named ``alert`` waits before firing."""
    durations = [s.for_s for s in rule_specs(render_rules(topology)) if s.alert == alert]
    if not durations:
        raise ConfigError(f"no rule defines alert {alert!r}; known: {', '.join(ALERT_CATALOGUE)}")
    return max(durations)
