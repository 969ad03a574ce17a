"""Observation: Prometheus queries, alert waits, notifications, node /metrics, recovery, timeline.

Drills build one :class:`Observer` per stack (``Observer.from_topology(topology, client)``)
and use the free functions for what reads nodes directly.
"""

from __future__ import annotations

from harness.observe.alerts import (
    AlertObservation,
    FiredAlert,
    Observer,
    WebhookClient,
)
from harness.observe.kv import KVRelease, assert_kv_released
from harness.observe.metrics import (
    HttpMetricsSource,
    MetricSample,
    MetricsSnapshot,
    MetricsSource,
    NodeState,
    gateway_sources,
    node_sources,
    parse_metrics,
    scrape,
)
from harness.observe.prom import ActiveAlert, PrometheusClient, Rule, Sample, Series
from harness.observe.recovery import (
    PrometheusSteadyState,
    Recovery,
    SteadyState,
    SteadyStateSource,
    Tolerance,
    measure_recovery,
)
from harness.observe.rules import (
    ALERT_CATALOGUE,
    RuleSpec,
    for_seconds,
    render_alertmanager,
    render_rules,
    rule_specs,
    write_alertmanager,
    write_rules,
)
from harness.observe.timeline import Timeline, TimelineSample, TimelineTargets, samples_to_json
from harness.observe.webhook import Notification

__all__ = [
    "ALERT_CATALOGUE",
    "ActiveAlert",
    "AlertObservation",
    "FiredAlert",
    "HttpMetricsSource",
    "KVRelease",
    "MetricSample",
    "MetricsSnapshot",
    "MetricsSource",
    "NodeState",
    "Notification",
    "Observer",
    "PrometheusClient",
    "PrometheusSteadyState",
    "Recovery",
    "Rule",
    "RuleSpec",
    "Sample",
    "Series",
    "SteadyState",
    "SteadyStateSource",
    "Timeline",
    "TimelineSample",
    "TimelineTargets",
    "Tolerance",
    "WebhookClient",
    "assert_kv_released",
    "for_seconds",
    "gateway_sources",
    "measure_recovery",
    "node_sources",
    "parse_metrics",
    "render_alertmanager",
    "render_rules",
    "rule_specs",
    "samples_to_json",
    "scrape",
    "write_alertmanager",
    "write_rules",
]
