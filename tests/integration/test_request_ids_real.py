"""The stack's own request id on the real stack: the front door sets X-Request-Id on a
completion and on an error it makes itself, and the load client records it apart from
its own id."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from harness.clients.metrics import scrape
from harness.faults.network import ProxyDisabled
from harness.load import LoadSpec, RequestResult, make_client, parse_lengths, run_load
from harness.stack.stack import Stack
from harness.waits import Probe, Wait

FRONT_DOOR_ERRORS = (502, 503, 504)


def one_request(stack: Stack) -> RequestResult:
    load = LoadSpec(target=stack.front_door_url, model=stack.topology.model.served_name,
                    max_requests=1, duration_s=30.0, concurrency=1,
                    output_len=parse_lengths("8", field_name="output_len"))

    async def main() -> tuple[RequestResult, ...]:
        async with make_client(load) as client:
            return await run_load(client, load)
    (result,) = asyncio.run(main())
    return result


@pytest.mark.stack
def test_a_completion_carries_the_stacks_request_id(stack: Stack) -> None:
    result = one_request(stack)
    assert result.ok, result.error
    assert result.stack_request_id and result.stack_request_id.startswith("fd-")
    assert result.stack_request_id != result.request_id


@pytest.mark.stack
def test_a_front_door_error_carries_the_id_in_header_and_body(stack: Stack) -> None:
    """Both gateways cut off: the front door answers itself, in the error schema."""
    cuts = [ProxyDisabled(stack.fault_proxy, gw) for gw in stack.gateway_names]
    try:
        for cut in cuts:
            cut.apply()
        result = one_request(stack)
    finally:
        for cut in cuts:
            cut.revert()
        Wait(within=30.0, interval=0.25).until("the front door takes both gateways back",
                                               lambda: _both_up(stack))
    assert result.status in FRONT_DOOR_ERRORS and result.error is not None
    assert result.stack_request_id and result.stack_request_id.startswith("fd-")
    assert result.error.request_id == result.stack_request_id
    assert result.error.type and result.error.message
    assert result.error.code == str(result.status)


def _both_up(stack: Stack) -> Probe[None]:
    t = stack.topology
    with httpx.Client(timeout=5.0) as client:
        snap = scrape(client, t.url(t.front_door.stats_port, "/metrics"))
    up = {s.labels.get("server") for s in snap.get("haproxy_server_status", state="UP")
          if s.value == 1}
    return Probe(done=set(stack.gateway_names) <= up, seen=f"UP: {sorted(filter(None, up))}")
