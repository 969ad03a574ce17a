"""What drills read off the stack directly: gateway and front-door views, node counters,
and single requests. Everything waits with a deadline and fails the drill by name."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from harness.drill.run import DrillRun
from harness.errors import NotReady, Unreachable
from harness.observe.metrics import scrape
from harness.waits import Probe, Wait


def worker_url(drill: DrillRun, node: str) -> str:
    """The URL gateways know a node by (through the fault proxy)."""
    return drill.stack.node_proxied_url(node)


def gateways_see(drill: DrillRun, node: str) -> dict[str, float | None]:
    """Each gateway's vllm_router_worker_health for ``node`` (None when not listed)."""
    url = worker_url(drill, node)
    seen: dict[str, float | None] = {}
    for gw in drill.stack.gateway_names:
        snap = scrape(drill.http, drill.stack.gateway_metrics_url(gw))
        seen[gw] = snap.maximum("vllm_router_worker_health", worker=url)
    return seen


def front_door_state(drill: DrillRun, gateway: str) -> str:
    t = drill.stack.topology
    snap = scrape(drill.http, t.url(t.front_door.stats_port, "/metrics"))
    for sample in snap.get("haproxy_server_status", server=gateway):
        if sample.value == 1:
            return sample.labels.get("state", "?")
    return "absent"


def node_counter(drill: DrillRun, node: str, metric: str) -> float:
    snap = scrape(drill.http, drill.stack.topology.url(drill.stack.topology.node(node).port,
                                                       "/metrics"))
    return snap.total(metric) or 0.0


def await_property(drill: DrillRun, prop: str, within: float, check: Callable[[], bool],
                   seen: Callable[[], object] | None = None) -> float:
    """Wait until ``check()`` is true; record the verdict with the time it took."""
    began = time.monotonic()

    def probe() -> Probe[None]:
        return Probe(done=check(), seen=str(seen()) if seen else "")

    try:
        Wait(within=within, interval=0.25,
         transient=(httpx.HTTPError, OSError, Unreachable)).until(
            prop, probe)
    except NotReady as exc:
        drill.check(prop, False, str(exc))
    took = time.monotonic() - began
    drill.check(prop, True, f"after {took:.1f}s")
    return took


def completion(drill: DrillRun, base_url: str, *, tokens: int = 16,
               prompt: str = "drill probe", timeout: float = 30.0) -> httpx.Response:
    """One non-streamed completion (privacy: callers keep status and timings, not text)."""
    body = {"model": drill.stack.model, "prompt": prompt, "max_tokens": tokens,
            "ignore_eos": True, "temperature": 0}
    return drill.http.post(f"{base_url}/v1/completions", json=body, timeout=timeout)


def streamed_ttft(drill: DrillRun, base_url: str, tokens: int = 16) -> float:
    """Seconds to the first streamed chunk of one completion."""
    body = {"model": drill.stack.model, "prompt": "warm-up probe", "max_tokens": tokens,
            "ignore_eos": True, "stream": True}
    began = time.monotonic()
    with drill.http.stream("POST", f"{base_url}/v1/completions", json=body,
                           timeout=30.0) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                return time.monotonic() - began
    raise httpx.RemoteProtocolError("stream ended before any chunk")
