"""Hot model swap: a canary node serving a new model revision takes a share of traffic
through the front door; it is compared with the stable node (TTFT, tokens/s, output
check) and promoted, or, when deliberately bad (slow or broken), rolled back
automatically, after which traffic returns to the stable nodes only.
"""

from __future__ import annotations

import pytest

from harness.drill.canary import (
    analyze,
    gateways_route_to,
    probe_nodes,
    set_canary_in_rotation,
)
from harness.drill.probes import await_property, node_counter
from harness.drill.run import DrillRun
from harness.drill.steady import ensure_steady
from harness.faults.base import FaultBase
from harness.faults.network import HttpError, Latency
from harness.load import LoadSpec, parse_lengths

STABLE = "node1"
ALLOWED_ALERTS = {"TTFTHigh", "ErrorRateHigh", "GatewayBackendDown", "CircuitOpen", "TPSDrop"}


def canary_name(drill: DrillRun) -> str:
    canary = drill.stack.topology.canary
    assert canary is not None, "the topology defines no canary node"
    return canary.name


def badness(drill: DrillRun, kind: str, canary: str) -> FaultBase | None:
    proxy = drill.stack.fault_proxy
    if kind == "slow":
        return Latency(proxy, canary, latency_ms=drill.config.hot_swap.slow_canary_latency_ms)
    if kind == "broken":
        return HttpError(proxy, canary, status=500, message="canary revision is broken",
                         path_prefix="/v1/")
    return None


def run_hot_swap(drill: DrillRun, kind: str) -> None:
    ensure_steady(drill)
    cfg, canary = drill.config.hot_swap, canary_name(drill)
    drill.stack.start(canary)
    try:
        drill.measure("canary_ready_s", drill.stack.wait_ready(canary, cfg.canary_start_within_s))
        set_canary_in_rotation(drill, canary, joined=True)
        drill.phase("canary in rotation")
        traffic = LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                           max_requests=cfg.requests, concurrency=cfg.concurrency,
                           duration_s=120, output_len=parse_lengths("16", field_name="out"))
        served = node_counter(drill, canary, "vllm:request_success_total")
        drill.load(traffic).start().wait()
        share = node_counter(drill, canary, "vllm:request_success_total") - served
        drill.measure("canary_requests", share)
        drill.check("the canary takes a share of front-door traffic", share > 0,
                    f"{share} of {cfg.requests} requests")
        bad = badness(drill, kind, canary)
        if bad is not None:
            bad.apply()
        try:
            decide(drill, kind, canary)
        finally:
            if bad is not None:
                bad.revert()
    finally:
        set_canary_in_rotation(drill, canary, joined=False)
        drill.stack.runtime.stop(canary)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def decide(drill: DrillRun, kind: str, canary: str) -> None:
    cfg = drill.config.hot_swap
    stable, candidate = probe_nodes(
        drill, [drill.stack.node_proxied_url(n) for n in (STABLE, canary)], cfg.probe_requests)
    decision = analyze(cfg, stable, candidate)
    if stable.ttft_p50_s and candidate.ttft_p50_s:
        drill.measure("canary_ttft_ratio", candidate.ttft_p50_s / stable.ttft_p50_s)
    if kind == "good":
        drill.check("a healthy canary is promoted", decision.promote, decision.reason)
        return
    drill.check(f"a {kind} canary is rolled back", not decision.promote, decision.reason)
    rolled_back = drill.phase("rolled back")
    set_canary_in_rotation(drill, canary, joined=False)
    drill.measure("rollback_s", await_property(
        drill, "the gateways stop routing to the canary", cfg.rollback_within_s,
        lambda: not gateways_route_to(drill, canary)))
    served = node_counter(drill, canary, "vllm:request_success_total")
    after = LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                     max_requests=cfg.requests, concurrency=cfg.concurrency, duration_s=120,
                     output_len=parse_lengths("16", field_name="out"))
    results = drill.load(after).start().wait()
    moved = node_counter(drill, canary, "vllm:request_success_total") - served
    summary = drill.summarize("after rollback", results, (rolled_back, float("inf")))
    drill.check("traffic returns to the stable nodes only", moved == 0 and summary.ok ==
                summary.requests, f"canary served {moved}; {summary.ok}/{summary.requests} ok")


@pytest.mark.parametrize("kind", ["good", "slow", "broken"])
def test_hot_model_swap(start_drill, kind: str) -> None:  # type: ignore[no-untyped-def]
    with start_drill(f"hot_swap_{kind}") as drill:
        run_hot_swap(drill, kind)
