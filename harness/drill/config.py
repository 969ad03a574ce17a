"""The drills config (``drills/drills.yaml``): every threshold a drill asserts on.

Decoded with the same decoder as the stack file, so a malformed value names the
file, line and field; ``--drill-set section.field=value`` overrides one per run.
The YAML file holds the values (and documents them); these classes only the shape,
so every field is required there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.config import load_yaml
from harness.errors import ConfigError

DRILLS_FILE = Path(__file__).resolve().parents[2] / "drills" / "drills.yaml"


@dataclass(frozen=True)
class SteadyConfig:
    ttft_p95_s: float
    probe_requests: int
    max_error_ratio: float
    settle_within_s: float


@dataclass(frozen=True)
class SLOConfig:
    ttft_s: float
    e2e_s: float


@dataclass(frozen=True)
class TimeoutSpikeConfig:
    latency_ms: int
    client_timeout_s: float
    max_attempts: int
    requests: int
    rate_per_s: float
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
    warmup_ttft_s: float
    warmup_requests: int
    mark_down_within_s: float


@dataclass(frozen=True)
class GatewayFailoverConfig:
    requests: int
    concurrency: int
    max_failed_requests: int
    switch_within_s: float
    alert_within_s: float


@dataclass(frozen=True)
class CancelStormConfig:
    waves: int
    streams_per_wave: int
    chunks_before_cancel: int
    min_abandoned_ratio: float
    concurrency: int
    output_tokens: int
    settle_s: float
    flat_window_s: float
    connection_slack: int


@dataclass(frozen=True)
class HotSwapConfig:
    requests: int
    concurrency: int
    probe_requests: int
    max_ttft_ratio: float
    ttft_slack_s: float
    max_error_ratio: float
    slow_canary_latency_ms: int
    rollback_within_s: float
    canary_start_within_s: float


@dataclass(frozen=True)
class DrillsConfig:
    steady: SteadyConfig
    slo: SLOConfig
    timeout_spike: TimeoutSpikeConfig
    oom: OOMConfig
    node_restart: NodeRestartConfig
    gateway_failover: GatewayFailoverConfig
    cancel_storm: CancelStormConfig
    hot_swap: HotSwapConfig


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``["cancel_storm.settle_s=5"]`` -> ``{"cancel_storm.settle_s": 5}`` (YAML scalars)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected section.field=value, got {item!r}", field="--drill-set")
        out[key.strip()] = yaml.safe_load(value)
    return out


def load_drills_config(path: Path = DRILLS_FILE, sets: list[str] | None = None) -> DrillsConfig:
    return load_yaml(path, DrillsConfig, overrides=parse_assignments(sets or []))
