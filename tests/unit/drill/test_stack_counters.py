"""The gateways' and the front door's own counters: read, or a ProbeError."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from drills.catalogue import load_catalogue
from harness.drill import front_door_counter, gateway_counter, gateway_retries
from harness.drill.run import DrillRun
from harness.errors import ProbeError, Unreachable
from harness.stack.stack import Stack
from harness.topology import DEFAULT_STACK_FILE, load_topology

TOPOLOGY = load_topology(DEFAULT_STACK_FILE)
GATEWAYS = tuple(g.name for g in TOPOLOGY.gateways)
FRONT_DOOR = TOPOLOGY.url(TOPOLOGY.front_door.stats_port, "/metrics")
ROUTE = 'route="/v1/completions"'
COUNTING = f"# TYPE vllm_router_requests_total counter\nvllm_router_requests_total{{{ROUTE}}} 9\n"
RETRIED = COUNTING + (f"# TYPE vllm_router_retries_total counter\n"
                      f"vllm_router_retries_total{{{ROUTE}}} 4\n")
NOT_A_ROUTER = "# TYPE up gauge\nup 1\n"


def gateway_url(name: str) -> str:
    return TOPOLOGY.url(TOPOLOGY.gateway(name).metrics_port, "/metrics")


def _drill(pages: dict[str, str]) -> DrillRun:
    def handler(request: httpx.Request) -> httpx.Response:
        page = pages.get(str(request.url))
        return httpx.Response(200, text=page) if page is not None else httpx.Response(404)
    stack = cast(Stack, SimpleNamespace(topology=TOPOLOGY, gateway_names=GATEWAYS,
                                        gateway_metrics_url=gateway_url))
    return DrillRun(name="probe", stack=stack, config=load_catalogue(),
                    http=httpx.Client(transport=httpx.MockTransport(handler)))


def test_retries_are_read_per_gateway() -> None:
    drill = _drill({gateway_url("gateway-a"): RETRIED, gateway_url("gateway-b"): COUNTING})
    # vllm-router registers a counter at its first increment: a live router page without
    # it has never retried
    assert gateway_retries(drill) == {"gateway-a": 4.0, "gateway-b": 0.0}


def test_a_page_that_is_not_a_live_router_raises() -> None:
    drill = _drill({gateway_url("gateway-a"): NOT_A_ROUTER})
    with pytest.raises(ProbeError, match="not a live vllm-router page"):
        gateway_counter(drill, "gateway-a", "vllm_router_retries_total")


def test_an_unreachable_gateway_raises() -> None:
    with pytest.raises(Unreachable):
        gateway_counter(_drill({}), "gateway-a", "vllm_router_retries_total")


def test_front_door_counters_are_read_by_label_and_absent_ones_raise() -> None:
    page = ('# TYPE haproxy_server_current_sessions gauge\n'
            'haproxy_server_current_sessions{proxy="gateways",server="gateway-a"} 3\n'
            'haproxy_server_current_sessions{proxy="gateways",server="gateway-b"} 1\n')
    drill = _drill({FRONT_DOOR: page})
    assert front_door_counter(drill, "haproxy_server_current_sessions", proxy="gateways",
                              server="gateway-a") == 3.0
    with pytest.raises(ProbeError, match="absent"):
        front_door_counter(drill, "haproxy_server_current_sessions", server="gateway-z")
