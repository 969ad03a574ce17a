"""Observation: Prometheus queries, alert waits, notifications, node /metrics, recovery, timeline.

Drills build one :class:`Observer` per stack (``Observer.from_topology(topology, client)``)
and use the free functions for what reads nodes directly.
"""

from __future__ import annotations

from harness.clients.metrics import (
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
from harness.clients.prometheus import ActiveAlert, PrometheusClient, Rule, Sample, Series
from harness.observe.abandoned import AbandonedStream, AbandonedStreams, abandoned_streams
from harness.observe.aborts import (
    EngineAborts,
    EngineRequests,
    engine_aborts,
    read_engine_requests,
)
from harness.observe.alerts import (
    AlertDelivery,
    AlertObservation,
    FiredAlert,
    Observer,
    WebhookClient,
    severity_route,
)
from harness.observe.kv import KVPeak, KVPeakSampler, KVRelease, assert_kv_released
from harness.observe.recovery import (
    PrometheusSteadyState,
    Recovered,
    Recovery,
    SteadyState,
    SteadyStateSource,
    Tolerance,
    measure_recovery,
    time_to_recover,
)
from harness.observe.timeline import Timeline, TimelineSample, TimelineTargets, samples_to_json
from harness.render.rules import (
    ALERT_CATALOGUE,
    RuleSpec,
    for_seconds,
    render_alertmanager,
    render_rules,
    rule_specs,
    write_alertmanager,
    write_rules,
)
from harness.webhook.store import Notification

__all__ = [
    "ALERT_CATALOGUE",
    "AbandonedStream",
    "AbandonedStreams",
    "ActiveAlert",
    "AlertDelivery",
    "AlertObservation",
    "EngineAborts",
    "EngineRequests",
    "FiredAlert",
    "HttpMetricsSource",
    "KVPeak",
    "KVPeakSampler",
    "KVRelease",
    "MetricSample",
    "MetricsSnapshot",
    "MetricsSource",
    "NodeState",
    "Notification",
    "Observer",
    "PrometheusClient",
    "PrometheusSteadyState",
    "Recovered",
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
    "abandoned_streams",
    "assert_kv_released",
    "engine_aborts",
    "for_seconds",
    "gateway_sources",
    "measure_recovery",
    "node_sources",
    "parse_metrics",
    "read_engine_requests",
    "render_alertmanager",
    "render_rules",
    "rule_specs",
    "samples_to_json",
    "scrape",
    "severity_route",
    "time_to_recover",
    "write_alertmanager",
    "write_rules",
]
