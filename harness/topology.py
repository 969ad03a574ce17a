"""The stack's topology: one definition every runtime and config file reads.

``compose/stack.yaml`` is decoded into these frozen dataclasses; the process
runtime, the compose file, Prometheus' scrape targets, HAProxy's backends and
the alert thresholds are all derived from one :class:`Topology`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import load_yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = PROJECT_ROOT / "compose"
DEFAULT_STACK_FILE = COMPOSE_DIR / "stack.yaml"


@dataclass(frozen=True)
class ModelSpec:
    served_name: str
    revision: str = "stable"
    max_model_len: int = 1024
    max_num_seqs: int = 8
    kv_blocks: int = 64
    block_size: int = 32
    kv_cache_space_gib: int = 1
    dtype: str = "bfloat16"
    cpu_bind: str = "nobind"  # VLLM_CPU_OMP_THREADS_BIND: "nobind", "auto" or a core list

    def __post_init__(self) -> None:
        if self.block_size % 32:
            raise ValueError("block_size must be a multiple of 32 (CPU attention)")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    port: int
    proxy_port: int
    revision: str = ""


@dataclass(frozen=True)
class GatewaySpec:
    name: str
    port: int
    metrics_port: int
    proxy_port: int


@dataclass(frozen=True)
class GatewayPolicy:
    policy: str = "round_robin"
    health_check_interval_s: int = 1
    health_check_timeout_s: int = 3
    health_failure_threshold: int = 2
    health_success_threshold: int = 1
    retry_max: int = 3
    retry_initial_backoff_ms: int = 50
    retry_max_backoff_ms: int = 500
    cb_failure_threshold: int = 3
    cb_success_threshold: int = 2
    cb_timeout_s: int = 5
    request_timeout_s: int = 60


@dataclass(frozen=True)
class FrontDoorSpec:
    name: str
    port: int
    stats_port: int
    check_interval_ms: int = 500
    check_timeout_ms: int = 3000
    fall: int = 3
    rise: int = 2


@dataclass(frozen=True)
class ServiceSpec:
    """A component with one port (fault proxy, webhook receiver, load exporter)."""

    name: str
    port: int


@dataclass(frozen=True)
class PrometheusSpec:
    name: str
    port: int
    scrape_interval_s: int = 1
    evaluation_interval_s: int = 1

    @property
    def scrape_timeout_s(self) -> int:
        """A scrape may take the whole interval before it counts as failed."""
        return self.scrape_interval_s


@dataclass(frozen=True)
class AlertmanagerSpec:
    name: str
    port: int
    group_wait_s: int = 1
    group_interval_s: int = 2
    repeat_interval_s: int = 60


@dataclass(frozen=True)
class Thresholds:
    ttft_p95_s: float = 0.8
    tps_drop_ratio: float = 0.5
    kv_saturated_ratio: float = 0.95
    kv_release_baseline: float = 0.05
    queue_backlog: int = 4
    error_rate_ratio: float = 0.05
    for_short_s: int = 2
    for_long_s: int = 5
    node_hung_s: int = 30


@dataclass(frozen=True)
class Topology:
    model: ModelSpec
    nodes: tuple[NodeSpec, ...]
    gateways: tuple[GatewaySpec, ...]
    front_door: FrontDoorSpec
    fault_proxy: ServiceSpec
    prometheus: PrometheusSpec
    alertmanager: AlertmanagerSpec
    webhook: ServiceSpec
    load_exporter: ServiceSpec
    canary: NodeSpec | None = None
    gateway_policy: GatewayPolicy = GatewayPolicy()
    thresholds: Thresholds = Thresholds()
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        names = [name for name, _ in self.ports()]
        ports = [port for _, port in self.ports()]
        clashes = sorted({p for p in ports if ports.count(p) > 1})
        if clashes:
            raise ValueError(f"ports used twice: {clashes}")
        dupes = sorted({n for n in names if names.count(n) > 1 and not n.endswith(":metrics")})
        if dupes:
            raise ValueError(f"component names used twice: {dupes}")

    def proxies(self) -> list[tuple[str, int, int]]:
        """(name, listen port, upstream port) of every fault-proxy route."""
        routes = [(n.name, n.proxy_port, n.port) for n in self.all_nodes()]
        return routes + [(g.name, g.proxy_port, g.port) for g in self.gateways]

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    def all_nodes(self) -> tuple[NodeSpec, ...]:
        return self.nodes + ((self.canary,) if self.canary else ())

    def node(self, name: str) -> NodeSpec:
        for node in self.all_nodes():
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r}; known: {[n.name for n in self.all_nodes()]}")

    def gateway(self, name: str) -> GatewaySpec:
        for gw in self.gateways:
            if gw.name == name:
                return gw
        raise KeyError(f"no gateway named {name!r}; known: {[g.name for g in self.gateways]}")

    def node_revision(self, node: NodeSpec) -> str:
        return node.revision or self.model.revision

    def ports(self) -> list[tuple[str, int]]:
        """Every (component, port) pair the stack binds."""
        pairs: list[tuple[str, int]] = []
        for node in self.all_nodes():
            pairs += [(node.name, node.port), (f"{node.name}:proxy", node.proxy_port)]
        for gw in self.gateways:
            pairs += [(gw.name, gw.port), (f"{gw.name}:metrics", gw.metrics_port),
                      (f"{gw.name}:proxy", gw.proxy_port)]
        fd = self.front_door
        pairs += [(fd.name, fd.port), (f"{fd.name}:stats", fd.stats_port)]
        for svc in (self.fault_proxy, self.prometheus, self.alertmanager, self.webhook,
                    self.load_exporter):
            pairs.append((svc.name, svc.port))
        return pairs

    # Public URLs every layer uses.
    @property
    def front_door_url(self) -> str:
        return self.url(self.front_door.port)

    @property
    def prometheus_url(self) -> str:
        return self.url(self.prometheus.port)

    @property
    def alertmanager_url(self) -> str:
        return self.url(self.alertmanager.port)

    @property
    def fault_proxy_url(self) -> str:
        return self.url(self.fault_proxy.port)

    @property
    def webhook_url(self) -> str:
        return self.url(self.webhook.port)


def load_topology(path: Path = DEFAULT_STACK_FILE,
                  overrides: dict[str, Any] | None = None) -> Topology:
    """Read a stack file; errors name the file, line and field."""
    return load_yaml(path, Topology, overrides=overrides)
