"""A stack that exists only as HTTP answers: the default topology's URLs served by an
``httpx.MockTransport``, with every component's state a field a test can change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx

from harness.drill import DrillRun, SLOConfig, SteadyConfig
from harness.stack.runtime import Runtime
from harness.stack.stack import Stack
from harness.topology import DEFAULT_STACK_FILE, Topology, load_topology
from tests.fakes import FakePrometheus, vllm_text

TOPOLOGY = load_topology(DEFAULT_STACK_FILE)
HAPROXY_STATES = ("UP", "DOWN", "MAINT")
# settle_within_s 0: ensure_steady looks once, so a stack that is off fails at once
STEADY = SteadyConfig(ttft_p95_s=1.0, probe_requests=2, max_error_ratio=0.0, settle_within_s=0)
SLO = SLOConfig(ttft_s=2.0, e2e_s=20.0)


@dataclass(frozen=True)
class Settings:
    """A catalogue of no drills: only the sections the library reads."""

    steady: SteadyConfig = STEADY
    slo: SLOConfig = SLO


@dataclass
class FakeRuntime:
    """Only what the Stack handle asks in these tests: which components run, their logs."""

    topology: Topology
    stopped: set[str] = field(default_factory=set)
    #: each component's log as successive reads see it (the last one stays): a line
    #: written after a read shows up in a later one
    logs: dict[str, list[str]] = field(default_factory=dict)

    def is_running(self, name: str) -> bool:
        return name not in self.stopped

    def log_tail(self, name: str, lines: int = 20) -> str:
        reads = self.logs.get(name, [""])
        text = reads.pop(0) if len(reads) > 1 else reads[0]
        return "\n".join(text.splitlines()[-lines:])


Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class FakeStack:
    """Every component idle and healthy until a test says otherwise."""

    topology: Topology = TOPOLOGY
    node_metrics: dict[str, str] = field(default_factory=dict)
    worker_health: dict[tuple[str, str], float] = field(default_factory=dict)
    circuit: dict[tuple[str, str], float] = field(default_factory=dict)
    backends: dict[str, str] = field(default_factory=dict)
    proxies: dict[str, dict[str, object]] = field(default_factory=dict)
    prometheus: FakePrometheus = field(default_factory=FakePrometheus)
    completions: Handler = field(default=lambda request: httpx.Response(200, json={}))
    requests: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = self.topology
        for node in t.nodes:
            self.node_metrics.setdefault(node.name, vllm_text())
            for gateway in t.gateways:
                self.worker_health.setdefault((gateway.name, node.name), 1)
                self.circuit.setdefault((gateway.name, node.name), 0)
        for gateway in t.gateways:
            self.backends.setdefault(gateway.name, "UP")
        for node in t.nodes:
            self.proxies.setdefault(node.name, {
                "name": node.name, "listen": f"127.0.0.1:{node.proxy_port}",
                "upstream": f"127.0.0.1:{node.port}", "enabled": True, "toxics": []})

    # -- the component behind each port ---------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/completions":
            return self.completions(request)
        route = self._routes().get(request.url.port or 0)
        return route(request) if route else httpx.Response(404, text="no such component")

    def _routes(self) -> dict[int, Handler]:
        t = self.topology
        routes: dict[int, Handler] = {
            t.prometheus.port: self.prometheus.handler,
            t.fault_proxy.port: lambda request: httpx.Response(200, json=self.proxies),
            t.front_door.stats_port: lambda request: self._text(self._haproxy_text()),
        }
        routes.update({n.port: self._node_handler(n.name) for n in t.nodes
                       if n.name in self.node_metrics})
        routes.update({g.metrics_port: self._gateway_handler(g.name) for g in t.gateways})
        return routes

    def _node_handler(self, node: str) -> Handler:
        return lambda request: self._text(self.node_metrics[node])

    def _gateway_handler(self, gateway: str) -> Handler:
        return lambda request: self._text(self._gateway_text(gateway))

    @staticmethod
    def _text(text: str) -> httpx.Response:
        return httpx.Response(200, text=text)

    def _gateway_text(self, gateway: str) -> str:
        lines = ["# TYPE vllm_router_worker_health gauge", "# TYPE vllm_router_cb_state gauge"]
        for (gw, node), value in self.worker_health.items():
            if gw == gateway:
                lines.append(f'vllm_router_worker_health{{worker="{self.worker(node)}"}} {value}')
        for (gw, node), value in self.circuit.items():
            if gw == gateway:
                lines.append(f'vllm_router_cb_state{{worker="{self.worker(node)}"}} {value}')
        return "\n".join([*lines, ""])

    def _haproxy_text(self) -> str:
        lines = ["# TYPE haproxy_server_status gauge"]
        for server, state in self.backends.items():
            lines += [f'haproxy_server_status{{proxy="gateways",server="{server}",'
                      f'state="{s}"}} {int(s == state)}' for s in HAPROXY_STATES]
        return "\n".join([*lines, ""])

    def worker(self, node: str) -> str:
        return self.topology.url(self.topology.node(node).proxy_port)

    # -- what the tests hold --------------------------------------------------------------
    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def drill(self, run_dir: Path, runtime: FakeRuntime | None = None) -> DrillRun[Settings]:
        """A real DrillRun over this fake (not entered: no timeline thread, no journal)."""
        fake_runtime = runtime or FakeRuntime(self.topology)
        # The Stack handle only calls is_running and log_tail here; the cast spares the
        # fake the rest.
        stack = Stack(self.topology, cast(Runtime, fake_runtime), run_dir, "unit",
                      _http=self.client())
        return DrillRun(name="unit", stack=stack, config=Settings(), http=self.client())
