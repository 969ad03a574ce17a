"""The stack's topology: one definition every runtime and config file reads.

A stack file (the default is ``harness/defaults/stack.yaml``, package data) is
decoded into these frozen dataclasses; the process runtime, the compose file,
Prometheus' scrape targets, HAProxy's backends and the alert thresholds are all
derived from one :class:`Topology`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness.config import load_yaml

#: The default stack, shipped inside the package (wheels install unpacked, so it is a file).
DEFAULT_STACK_FILE = Path(str(resources.files("harness") / "defaults" / "stack.yaml"))


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
    # vLLM's --shutdown-timeout: on SIGTERM the engine stops taking new requests and lets
    # those in flight finish for up to this long (0: it aborts them at once)
    shutdown_timeout_s: int = 60

    def __post_init__(self) -> None:
        if self.block_size % 32:
            raise ValueError("block_size must be a multiple of 32 (CPU attention)")
        if self.shutdown_timeout_s < 0:
            raise ValueError("shutdown_timeout_s must be >= 0 (0: abort in-flight requests)")


@dataclass(frozen=True)
class NodeSpec:
    """A vLLM node. ``host`` is left empty in stack files: the node listens on the
    topology's host, or on its address on the node network when a runtime puts it
    there (:meth:`Topology.on_node_network`)."""

    name: str
    port: int
    proxy_port: int
    revision: str = ""
    host: str = ""


NODE_ADDRESS_OFFSET = 10  # node i gets the subnet's address 10 + i (.1 is the host's)


@dataclass(frozen=True)
class NodeNetwork:
    """A network of the run's own for the nodes, on runtimes that can make one (the
    container runtime): an internal bridge with no route out, which this host reaches
    through its own address on it, so that a node can be cut off from every other
    component (the partition fault). Runtimes without one keep the nodes on ``host``."""

    subnet: str = "172.31.250.0/24"

    def __post_init__(self) -> None:
        try:
            net = ipaddress.ip_network(self.subnet)
        except ValueError as exc:
            raise ValueError(f"subnet must be an IPv4 network like 172.31.250.0/24: {exc}") \
                from None
        if not isinstance(net, ipaddress.IPv4Network) or not net.is_private:
            raise ValueError(f"subnet must be a private IPv4 network, got {self.subnet}")
        if net.num_addresses < 32:
            raise ValueError(f"subnet {self.subnet} is too small: a /27 or larger")

    @property
    def gateway(self) -> str:
        """This host's own address on the network."""
        return str(ipaddress.ip_network(self.subnet).network_address + 1)

    def address(self, index: int) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address
                   + NODE_ADDRESS_OFFSET + index)


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
    health_check_timeout_s: int = 6
    health_failure_threshold: int = 2
    health_success_threshold: int = 1
    retry_max: int = 5  # attempts in all (vllm-router's --retry-max-retries)
    retry_initial_backoff_ms: int = 50
    retry_max_backoff_ms: int = 500
    cb_failure_threshold: int = 3
    cb_success_threshold: int = 2
    cb_timeout_s: int = 5
    request_timeout_s: int = 30
    health_check_endpoint: str = "/health/engine"


@dataclass(frozen=True)
class Admission:
    """The front door's admission control: what it lets through to the gateways when
    more arrives than the stack can serve.

    Each gateway is sent at most ``max_per_gateway`` requests at once; the rest wait at
    the front door for a slot. Once ``max_queued`` wait, a new request is turned away at
    once with a 429 (the error schema, the stack's request id, ``Retry-After:
    retry_after_s``); one that waited ``queue_timeout_s`` without a slot gets a 503 with
    the same ``Retry-After``. ``max_per_gateway`` 0 turns admission control off (every
    request goes straight to a gateway, however many are running).
    """

    max_per_gateway: int = 4
    max_queued: int = 2
    queue_timeout_s: int = 1
    retry_after_s: int = 2

    def __post_init__(self) -> None:
        if self.max_per_gateway < 0 or self.max_queued < 0:
            raise ValueError("max_per_gateway and max_queued must be >= 0 "
                             "(max_per_gateway 0: admission control off)")
        if self.queue_timeout_s < 1 or self.retry_after_s < 1:
            raise ValueError("queue_timeout_s and retry_after_s must be >= 1")

    @property
    def enabled(self) -> bool:
        return self.max_per_gateway > 0


@dataclass(frozen=True)
class FrontDoorSpec:
    name: str
    port: int
    stats_port: int
    check_interval_ms: int = 500
    check_timeout_ms: int = 10000
    fall: int = 3
    rise: int = 2
    server_timeout_margin_s: int = 5
    admission: Admission = Admission()


@dataclass(frozen=True)
class ServiceSpec:
    """A component with one port (fault proxy, webhook receiver, load exporter)."""

    name: str
    port: int


@dataclass(frozen=True)
class FaultProxySpec:
    """The proxy between the gateways and the nodes (and in front of the gateways), where
    network faults are injected. ``dead_peer_s``: a connection whose upstream leaves data
    (or, idle, keepalive probes) unanswered this long is ended, as a service mesh's
    sidecar ends it, so a partitioned node cannot hold a gateway's request until the
    gateway's own timeout; 0 holds it (the real Toxiproxy's behaviour)."""

    name: str
    port: int
    dead_peer_s: float = 5.0

    def __post_init__(self) -> None:
        if self.dead_peer_s < 0:
            raise ValueError(f"dead_peer_s must be >= 0 (0: off), got {self.dead_peer_s}")


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
    node_stall_s: int = 20
    shed_ratio: float = 0.05  # FrontDoorShedding: share of requests the front door turns away


RESTART_POLICIES = ("on-failure", "never")


@dataclass(frozen=True)
class RestartPolicy:
    """What the stack's supervisor does when a component dies on its own.

    ``on-failure``: restart after an exit nobody asked for (a kill, an OOM kill, a
    crash); ``never``: leave it dead. ``max_restarts``: consecutive restarts that die
    before they are up (supervisord's ``startretries``) before it gives up.
    ``backoff_s``: pause before each restart.
    """

    policy: str = "on-failure"
    max_restarts: int = 3
    backoff_s: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in RESTART_POLICIES:
            raise ValueError(f"policy must be one of {', '.join(RESTART_POLICIES)}, "
                             f"got {self.policy!r}")
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if self.backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {self.backoff_s}")

    @property
    def restarts(self) -> bool:
        return self.policy == "on-failure"


@dataclass(frozen=True)
class Restarts:
    """The restart policy of each kind of supervised component."""

    nodes: RestartPolicy = RestartPolicy()
    gateways: RestartPolicy = RestartPolicy()
    front_door: RestartPolicy = RestartPolicy()


@dataclass(frozen=True)
class RolloutPolicy:
    """When the rollout controller promotes or rolls back a canary (see harness.rollout).

    A step fails when the canary is slower than stable by both ``max_ttft_ratio`` and
    ``ttft_slack_s`` (tiny-model TTFTs are milliseconds: 10 ms against 30 ms is noise), when
    its tokens per second fall under ``min_tps_ratio`` x stable's, when more than
    ``max_error_ratio`` of its requests fail, or when its greedy answers to the
    ``output_prompts`` seeded prompts differ from stable's.
    """

    interval_s: float = 2.0
    analysis_steps: int = 5
    failed_checks: int = 2
    window_s: int = 10
    max_ttft_ratio: float = 3.0
    ttft_slack_s: float = 0.25
    min_tps_ratio: float = 0.5
    max_error_ratio: float = 0.05
    output_prompts: int = 3
    output_tokens: int = 16
    prompt_seed: int = 7
    probe_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.analysis_steps < 1 or self.failed_checks < 1:
            raise ValueError("interval_s must be > 0, analysis_steps and failed_checks >= 1")
        if self.output_prompts < 1 or self.output_tokens < 2:
            raise ValueError("output_prompts must be >= 1 and output_tokens >= 2")

    def flags(self) -> tuple[str, ...]:
        """The controller's command-line flags carrying this policy (one per field)."""
        pairs = ((f"--{f.name.replace('_', '-')}", str(getattr(self, f.name)))
                 for f in dataclasses.fields(self))
        return tuple(part for pair in pairs for part in pair)


@dataclass(frozen=True)
class UpgradePolicy:
    """How the stack's rolling upgrade takes each node to a new revision (see
    harness.rollout.upgrade): ``drain`` it from the gateways first, wait up to
    ``drain_within_s`` for what it holds to finish (``finish_in_flight``), stop it (SIGTERM,
    SIGKILL after ``stop_grace_s``; 0: SIGKILL at once), start it on the new revision within
    ``ready_within_s``, answer ``warmup_requests`` completions of ``warmup_tokens`` before
    it rejoins the gateways (``rejoin``; vllm-router never takes back a worker it was told
    to remove, so without it the node stays out). The alerts named in ``silence`` are
    silenced in Alertmanager for the node through its turn, and expired once Alertmanager
    holds none of them (within ``alerts_clear_within_s``) or a step failed."""

    drain: bool = True
    finish_in_flight: bool = True
    drain_within_s: float = 60.0
    stop_grace_s: float = 30.0
    ready_within_s: float = 240.0
    warmup_requests: int = 3
    warmup_tokens: int = 8
    rejoin: bool = True
    silence: tuple[str, ...] = ("NodeDown",)
    alerts_clear_within_s: float = 60.0

    def __post_init__(self) -> None:
        if self.drain_within_s <= 0 or self.ready_within_s <= 0 or self.stop_grace_s < 0:
            raise ValueError("drain_within_s and ready_within_s must be > 0, stop_grace_s >= 0")
        if self.warmup_requests < 0 or self.warmup_tokens < 1:
            raise ValueError("warmup_requests must be >= 0 and warmup_tokens >= 1")
        if self.alerts_clear_within_s <= 0:
            raise ValueError("alerts_clear_within_s must be > 0")

    def worst_case_s(self) -> float:
        """How long one node's turn can take before some step gives up (each warm-up
        at its 60 s timeout), with a minute to spare: its silences end by themselves then,
        should the procedure die."""
        return (self.drain_within_s + self.stop_grace_s + self.ready_within_s
                + 60.0 * self.warmup_requests + self.alerts_clear_within_s + 60.0)


@dataclass(frozen=True)
class RolloutSpec:
    """The rollout controller (canary analysis, rollback and shadow traffic) and the
    rolling upgrade's procedure."""

    name: str
    port: int
    analysis: RolloutPolicy = RolloutPolicy()
    upgrade: UpgradePolicy = UpgradePolicy()


@dataclass(frozen=True)
class Topology:
    model: ModelSpec
    nodes: tuple[NodeSpec, ...]
    gateways: tuple[GatewaySpec, ...]
    front_door: FrontDoorSpec
    fault_proxy: FaultProxySpec
    prometheus: PrometheusSpec
    alertmanager: AlertmanagerSpec
    webhook: ServiceSpec
    load_exporter: ServiceSpec
    canary: NodeSpec | None = None
    rollout: RolloutSpec | None = None
    gateway_policy: GatewayPolicy = GatewayPolicy()
    thresholds: Thresholds = Thresholds()
    restart: Restarts = Restarts()
    node_network: NodeNetwork | None = None
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

    def proxies(self) -> list[tuple[str, int, str]]:
        """(name, listen port, upstream host:port) of every fault-proxy route."""
        routes = [(n.name, n.proxy_port, self.node_address(n)) for n in self.all_nodes()]
        return routes + [(g.name, g.proxy_port, f"{self.host}:{g.port}") for g in self.gateways]

    def proxy_routes(self) -> list[dict[str, object]]:
        """The fault proxy's routes as its API takes them (``POST /populate``) and as
        Toxiproxy's ``-config`` file holds them."""
        return [{"name": name, "listen": f"{self.host}:{listen}", "upstream": upstream,
                 "enabled": True} for name, listen, upstream in self.proxies()]

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    def node_host(self, node: NodeSpec) -> str:
        return node.host or self.host

    def node_address(self, node: NodeSpec) -> str:
        """``host:port`` where the node itself listens."""
        return f"{self.node_host(node)}:{node.port}"

    def node_url(self, name: str, path: str = "") -> str:
        return f"http://{self.node_address(self.node(name))}{path}"

    def on_node_network(self) -> Topology:
        """This topology with every node at its address on the node network (the
        stack file's order: node1 first, the canary last); itself when the stack file
        asks for no node network."""
        net = self.node_network
        if net is None:
            return self
        placed = {n.name: dataclasses.replace(n, host=net.address(i))
                  for i, n in enumerate(self.all_nodes())}
        canary = placed[self.canary.name] if self.canary is not None else None
        return dataclasses.replace(self, nodes=tuple(placed[n.name] for n in self.nodes),
                                   canary=canary)

    def node_address_vanishes(self, name: str) -> bool:
        """The node listens at an address of its own (the node network), gone while its
        container is: Prometheus' scrapes of a dead node then time out instead of being
        refused, and NodeDown waits ``thresholds.node_hung_s`` for those."""
        return bool(self.node(name).host)

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
        if self.rollout is not None:
            pairs.append((self.rollout.name, self.rollout.port))
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

    @property
    def rollout_url(self) -> str | None:
        return self.url(self.rollout.port) if self.rollout is not None else None


def load_topology(path: Path = DEFAULT_STACK_FILE,
                  overrides: dict[str, Any] | None = None) -> Topology:
    """Read a stack file; errors name the file, line and field."""
    return load_yaml(path, Topology, overrides=overrides)
