"""This catalogue's thresholds: the shape of ``drills.yaml``, one section per drill.

The YAML file holds the values (and documents them); these classes only the shape, so
every field is required there. A new drill adds a section here and in ``drills.yaml``;
the library reads only ``steady`` and ``slo`` (see ``harness.drill.DrillSettings``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from harness.drill import DrillRun, SLOConfig, SteadyConfig, load_drill_config

DRILLS_FILE = Path(__file__).resolve().parent / "drills.yaml"


@dataclass(frozen=True)
class TimeoutSpikeConfig:
    latency_ms: int
    timeout_close_ms: int
    max_error_ratio: float
    client_timeout_s: float
    max_attempts: int
    requests: int
    rate_per_s: float
    quiet_within_s: float
    alert_within_s: float
    recovery_within_s: float


@dataclass(frozen=True)
class OOMConfig:
    oversized_prompt_words: int
    oversized_max_tokens: int
    burst_requests: int
    burst_output_tokens: int
    headroom_mib: int
    requests: int
    rate_per_s: float
    alert_within_s: float
    restart_within_s: float


@dataclass(frozen=True)
class NodeRestartConfig:
    streams: int
    output_tokens: int
    stream_timeout_s: float
    restart_within_s: float
    fail_fast_s: float
    precondition_within_s: float
    warmup_ttft_p95_s: float
    warmup_requests: int
    mark_down_within_s: float


@dataclass(frozen=True)
class GatewayFailoverConfig:
    requests: int
    concurrency: int
    max_failed_requests: int
    alert_within_s: float
    restart_within_s: float
    switch_slack_s: float


@dataclass(frozen=True)
class NodePartitionConfig:
    rate_per_s: float
    requests: int
    max_failed_requests: int
    out_within_s: float
    stuck_within_s: float
    hold_s: float
    back_within_s: float
    alert_within_s: float


@dataclass(frozen=True)
class FrontDoorLossConfig:
    rate_per_s: float
    answered: int
    output_tokens: int
    in_flight_at_kill: int
    traffic_within_s: float
    fail_fast_s: float
    restart_within_s: float
    resume_within_s: float
    alert_within_s: float


@dataclass(frozen=True)
class CancelStormConfig:
    waves: int
    streams_per_wave: int
    chunks_before_cancel: int
    min_abandoned_ratio: float
    min_abandoned_per_wave: int
    kv_peak_floor: float
    kv_sample_interval_s: float
    min_abort_ratio: float
    young_within_s: float
    min_young: int
    min_mid_stream_ratio: float
    concurrency: int
    output_tokens: int
    settle_s: float
    flat_window_s: float
    connection_slack: int
    connections_within_s: float
    wave_within_s: float
    max_attempts: int


@dataclass(frozen=True)
class HungComponentConfig:
    rate_per_s: float
    output_tokens: int
    answered: int
    traffic_within_s: float
    precondition_within_s: float
    out_within_s: float
    alert_within_s: float
    stuck_within_s: float
    max_failed_requests: int
    max_shed_ratio: float
    back_within_s: float


@dataclass(frozen=True)
class OverloadConfig:
    capacity_users: int
    warmup_s: float
    capacity_s: float
    output_tokens: int
    surge_factor: float
    min_overload_factor: float
    surge_s: float
    shed_within_s: float
    max_queue_wait_s: float
    max_engine_waiting: int
    alert_within_s: float
    recovery_within_s: float


@dataclass(frozen=True)
class RetryAfterConfig:
    rate_per_s: float
    requests: int
    toxicity: float
    retry_after_s: int
    max_attempts: int
    jitter: float
    retry_after_cap_s: float
    min_told: int
    min_spread_s: float


@dataclass(frozen=True)
class RollingUpgradeConfig:
    revision: str
    nodes: int
    rate_per_s: float
    output_tokens: int
    answered: int
    traffic_within_s: float
    busy_within_s: float


@dataclass(frozen=True)
class HotSwapConfig:
    requests: int
    concurrency: int
    slow_canary_latency_ms: int
    rollback_within_s: float
    decide_within_s: float
    canary_start_within_s: float


@dataclass(frozen=True)
class DrillsConfig:
    steady: SteadyConfig
    slo: SLOConfig
    timeout_spike: TimeoutSpikeConfig
    oom: OOMConfig
    node_restart: NodeRestartConfig
    gateway_failover: GatewayFailoverConfig
    node_partition: NodePartitionConfig
    front_door_loss: FrontDoorLossConfig
    cancel_storm: CancelStormConfig
    hot_swap: HotSwapConfig
    hung_component: HungComponentConfig
    hung_gateway: HungComponentConfig
    overload: OverloadConfig
    retry_after: RetryAfterConfig
    rolling_upgrade: RollingUpgradeConfig


Drill = DrillRun[DrillsConfig]
"""A run of one of this catalogue's drills: ``drill.config`` is a :class:`DrillsConfig`."""

StartDrill = Callable[[str], AbstractContextManager[Drill]]
"""The ``start_drill`` fixture: ``with start_drill("name") as drill:``."""


def load_catalogue(sets: Iterable[str] = (), path: Path = DRILLS_FILE) -> DrillsConfig:
    """``drills.yaml`` with ``--drill-set section.field=value`` overrides applied."""
    return load_drill_config(path, DrillsConfig, sets)
