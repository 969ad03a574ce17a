"""Hot model swap: a canary node serving a new model revision is deployed (joined to the
gateways and registered with the stack's rollout controller) and takes a share of traffic
through the front door. The drill then only observes: the controller promotes a good canary
(the stable weights under a new revision) and rolls back a slow (TTFT), broken (errors)
or wrong one (built from other weights: the output check) within its bound, on that
signal; the canary leaves every gateway, CanaryRolledBack
fires and is delivered, and traffic returns to the stable nodes only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    FaultBase,
    HttpError,
    Latency,
    LoadSpec,
    NotReady,
    RolloutDecision,
    await_decision,
    ensure_steady,
    gateways_routing_to,
    node_counter,
    parse_lengths,
    register_canary,
    set_canary_in_rotation,
)
from harness.errors import Unsupported
from harness.stack.model import WRONG_CANARY

STABLE = ("node1", "node2")
# What any canary deploy can cause on a 2-core host (a starting vLLM node slows the
# others). No ErrorRateHigh: the gateways retry a failing canary's requests on stable
# nodes, so users see no errors; no GatewayBackendDown: the canary joins ready and
# leaves through /remove_worker, never through failed health checks.
ALLOWED_ALERTS = {"TTFTHigh", "TPSDrop"}
CAUSED_BY_KIND = {"good": set(), "wrong": {"CanaryRolledBack"}, "slow": {"CanaryRolledBack"},
                  # the canary's breaker opens and closes on its 500s until the rollback
                  "broken": {"CanaryRolledBack", "CircuitOpen"}}
SERVED = "vllm:request_success_total"
#: await_decision polls every 0.5 s: a decision right at its bound is still read.
DECISION_SLACK_S = 2.0
# The controller's reason names the signal each bad canary must be caught on, so every
# signal is shown deciding on the real stack (harness/rollout/analysis.py words them).
# tokens/s has no case here: see docs/drills.md (a canary 9x slower in tokens/s was
# promoted under min_tps_ratio 0.1).
DECIDED_ON = {"slow": "TTFT", "broken": "error ratio", "wrong": "output differs"}


def canary_name(drill: Drill) -> str:
    canary = drill.stack.topology.canary
    assert canary is not None, "the topology defines no canary node"
    return canary.name


def badness(drill: Drill, kind: str, canary: str) -> FaultBase | None:
    proxy = drill.stack.fault_proxy
    if kind == "slow":
        return Latency(proxy, canary, latency_ms=drill.config.hot_swap.slow_canary_latency_ms)
    if kind == "broken":
        return HttpError(proxy, canary, status=500, message="canary revision is broken",
                         path_prefix="/v1/")
    return None


@contextmanager
def revision_deployed(drill: Drill, kind: str) -> Iterator[None]:
    """The wrong canary serves a model built from other weights; the others the stack's
    canary revision (the stable weights under a new revision)."""
    if kind != "wrong":
        yield
        return
    normal = drill.stack.topology
    assert normal.canary is not None, "the topology defines no canary node"
    try:
        drill.stack.use_topology(
            replace(normal, canary=replace(normal.canary, revision=WRONG_CANARY.revision)))
    except Unsupported as exc:
        pytest.skip(str(exc))
    try:
        yield
    finally:
        drill.stack.use_topology(normal)


def traffic(drill: Drill, requests: int, duration_s: float) -> LoadSpec:
    cfg = drill.config.hot_swap
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=requests, concurrency=cfg.concurrency, duration_s=duration_s,
                    output_len=parse_lengths("16", field_name="out"))


def run_hot_swap(drill: Drill, kind: str) -> None:
    ensure_steady(drill)
    cfg, canary = drill.config.hot_swap, canary_name(drill)
    with revision_deployed(drill, kind):
        drill.stack.start(canary)
        try:
            drill.measure("canary_ready_s",
                          drill.stack.wait_ready(canary, cfg.canary_start_within_s))
            set_canary_in_rotation(drill, canary, joined=True)
            drill.phase("canary in rotation")
            prove_canary_share(drill, canary)
            observe_rollout(drill, kind, canary)
        finally:
            if gateways_routing_to(drill, canary):  # teardown of what the drill added
                set_canary_in_rotation(drill, canary, joined=False)
            drill.stack.stop(canary)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS | CAUSED_BY_KIND[kind])


def prove_canary_share(drill: Drill, canary: str) -> None:
    cfg = drill.config.hot_swap
    served = node_counter(drill, canary, SERVED)
    drill.load(traffic(drill, cfg.requests, 120)).start().wait()
    share = node_counter(drill, canary, SERVED) - served
    drill.measure("canary_requests", share)
    drill.check("the canary takes a share of front-door traffic", share > 0,
                f"{share} of {cfg.requests} requests")


def observe_rollout(drill: Drill, kind: str, canary: str) -> None:
    """Register the canary, make it bad, and read what the controller decides."""
    cfg = drill.config.hot_swap
    applied_at = register_canary(drill, canary, STABLE).started_at
    bad = badness(drill, kind, canary)
    live = drill.load(traffic(drill, 100_000, cfg.decide_within_s)).start()
    try:
        try:
            if bad is not None:
                bad.apply()
                applied_at = time.time()
            drill.phase(f"{kind} canary under analysis")
            decision = controller_decision(drill, kind, canary, applied_at)
        finally:
            if bad is not None:
                bad.revert()
    finally:
        live.stop()
        live.wait()
    drill.measure("analysis_steps", decision.steps)
    if kind == "good":
        judge_promotion(drill, canary, decision)
    else:
        judge_rollback(drill, kind, canary, decision, applied_at)


def expected_decision(kind: str) -> str:
    return "the controller promotes a good canary" if kind == "good" else \
        f"the controller rolls back a {kind} canary"


def controller_decision(drill: Drill, kind: str, canary: str,
                        applied_at: float) -> RolloutDecision:
    """The controller's decision; none within the bound fails the property it owed. A
    bad canary's bound is its rollback's (``rollback_within_s`` from the moment it went
    bad, plus a poll's slack): a later decision would fail that bound anyway."""
    cfg = drill.config.hot_swap
    within = cfg.decide_within_s
    if kind != "good":
        within = min(within, applied_at + cfg.rollback_within_s + DECISION_SLACK_S - time.time())
    try:
        return await_decision(drill, canary, max(within, DECISION_SLACK_S))
    except NotReady as exc:
        drill.check(expected_decision(kind), False, f"no decision: {exc}")
        raise  # unreachable: check raised


def judge_promotion(drill: Drill, canary: str, decision: RolloutDecision) -> None:
    drill.check(expected_decision("good"), decision.state == "promoted",
                f"{decision.state}: {decision.reason}")
    routing = gateways_routing_to(drill, canary)
    drill.check("the promoted canary stays in every gateway",
                len(routing) == len(drill.stack.gateway_names), f"routed by {routing}")


def judge_rollback(drill: Drill, kind: str, canary: str, decision: RolloutDecision,
                   applied_at: float) -> None:
    cfg = drill.config.hot_swap
    drill.check(expected_decision(kind), decision.state == "rolled_back",
                f"{decision.state}: {decision.reason}")
    signal = DECIDED_ON[kind]
    drill.check(f"the rollback is decided on {signal}", signal in decision.reason,
                decision.reason)
    assert decision.decided_at is not None  # a rolled-back canary has its decision time
    rollback_s = drill.measure("rollback_s", decision.decided_at - applied_at)
    drill.check("the controller decides within its bound", rollback_s <= cfg.rollback_within_s,
                f"{rollback_s:.1f}s after the {kind} canary was live (bound "
                f"{cfg.rollback_within_s}s): {decision.reason}")
    routing = gateways_routing_to(drill, canary)
    drill.check("the canary left every gateway", not routing,
                f"still routed by {routing}; controller removed it from {decision.removed_from}")
    drill.expect_alert("CanaryRolledBack", "firing", within=30.0, labels={"canary": canary})
    rolled_back = drill.phase("rolled back")
    served = node_counter(drill, canary, SERVED)
    results = drill.load(traffic(drill, cfg.requests, 120)).start().wait()
    moved = node_counter(drill, canary, SERVED) - served
    summary = drill.summarize("after rollback", results, (rolled_back, float("inf")))
    drill.check("traffic returns to the stable nodes only", moved == 0 and summary.ok ==
                summary.requests, f"canary served {moved}; {summary.ok}/{summary.requests} ok")


# "broken" last: after /remove_worker the gateways keep exporting the removed canary's
# circuit-breaker state frozen open (CircuitOpen needs a cycling breaker, so it stays
# quiet on that, and the steady-state gate asks only about the topology's nodes).
@pytest.mark.parametrize("kind", ["good", "wrong", "slow", "broken"])
def test_hot_model_swap(start_drill: StartDrill, kind: str) -> None:
    with start_drill(f"hot_swap_{kind}") as drill:
        run_hot_swap(drill, kind)
