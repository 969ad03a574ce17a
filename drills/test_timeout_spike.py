"""Timeout spike: latency, then a timeout, between the gateways and one node, under load.

Must hold, judged on what the stack produced: TTFTHigh (client), quiet before the fault,
fires during the latency (delivered to its receiver through Alertmanager after the fault:
a firing the steady probes set off is not the fault's) and resolves after the revert; the
gateways' own retry counters moved (``vllm_router_retries_total``: the stack, not the
client, routed around the node that timed out); the front door's error ratio during the
spike stays within budget (its own 5xx and request counters); every user got a success
or the stack's clean error: the stack's request id (the front door's ``X-Request-Id``)
and a body in the error schema (type, message; the front door's own errors also name the
request id). A stream already flowing from the node when it went silent may end cut:
once its 200 is sent, closing the connection is all HTTP leaves the gateway (counted
and reported; a cut stream sent after that fails the drill). The client's retries,
attempts and timeouts are reported, never judged.
"""

from __future__ import annotations

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    ClientPolicy,
    DrillFailed,
    Latency,
    LoadSpec,
    RequestResult,
    RetryPolicy,
    Timeout,
    Timeouts,
    await_property,
    cut_mid_stream,
    ensure_steady,
    front_door_counter,
    gateway_retries,
    open_loop_traffic,
    recovery_seconds,
    user_outcomes,
)

VICTIM = "node1"
USERS_TTFT = {"source": "client"}  # TTFTHigh as the load generator measures it
ALLOWED_ALERTS = {"TTFTHigh", "GatewayBackendDown", "CircuitOpen", "TPSDrop"}


def traffic_with_hygiene(drill: Drill) -> LoadSpec:
    cfg = drill.config.timeout_spike
    timeouts = Timeouts(connect=2.0, read=cfg.client_timeout_s,
                        stream_idle=cfg.client_timeout_s)
    retries = RetryPolicy(max_attempts=cfg.max_attempts, base_backoff_s=0.2, max_backoff_s=2.0)
    return open_loop_traffic(drill, cfg.rate_per_s,
                             ClientPolicy(timeouts=timeouts, retries=retries))


def front_door_answers(drill: Drill) -> tuple[float, float]:
    """The front door's own (requests, 5xx responses) so far."""
    proxy = drill.stack.topology.front_door.name
    return (front_door_counter(drill, "haproxy_frontend_http_requests_total", proxy=proxy),
            front_door_counter(drill, "haproxy_frontend_http_responses_total", proxy=proxy,
                               code="5xx"))


def run_timeout_spike(drill: Drill) -> None:
    ensure_steady(drill)
    cfg, proxy = drill.config.timeout_spike, drill.stack.fault_proxy
    retries_before, answers_before = gateway_retries(drill), front_door_answers(drill)
    load = drill.load(traffic_with_hygiene(drill)).start()
    # the steady probes may have set it off themselves: its firing must be the fault's
    drill.await_quiet("TTFTHigh", within=cfg.quiet_within_s, labels=USERS_TTFT)
    with Latency(proxy, VICTIM, latency_ms=cfg.latency_ms):
        applied = drill.phase("latency applied")
        fired = drill.expect_alert("TTFTHigh", within=cfg.alert_within_s,
                                   labels=USERS_TTFT, set_off_after=applied)
        drill.measure("ttft_alert_after_s", fired.waited_s)
    drill.phase("latency reverted")
    with Timeout(proxy, VICTIM, timeout_ms=cfg.timeout_close_ms):
        held = drill.phase("timeout applied")
        await_property(drill, "requests keep completing while the node times out",
                       cfg.alert_within_s,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > held) >= cfg.requests)
    reverted = drill.phase("fault reverted")
    unresolved = await_resolution(drill, reverted)
    load.stop()
    results = load.wait(within=cfg.max_attempts * (cfg.client_timeout_s + 4.0) + 30)
    summary = drill.summarize("through the spike", results, (drill.started_at, reverted))
    drill.measure("client_retries", summary.retries)  # the client's doing: reported only
    drill.measure("client_timeouts", summary.errors.get("timeout", 0))
    try:
        judge_users(drill, results, retries_before, answers_before, held)
    except DrillFailed as later:
        if unresolved is None:
            raise
        raise DrillFailed(unresolved.property, unresolved.detail,
                          also=((later.property, later.detail), *later.also)) from later
    if unresolved is not None:
        raise unresolved
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def await_resolution(drill: Drill, reverted: float) -> DrillFailed | None:
    """TTFTHigh resolves after the revert, timed from it (``recovery_s``). A TTFTHigh that
    does not resolve fails the drill, but only once what users got has been judged too:
    the failure then names every property that did not hold."""
    cfg = drill.config.timeout_spike
    try:
        drill.expect_alert("TTFTHigh", "resolved", within=cfg.recovery_within_s)
    except DrillFailed as exc:
        return exc
    # the wait above is the assertion; the one recovery measurement reads the same
    # condition (no TTFTHigh active) and times it from the revert
    drill.measure("recovery_s", recovery_seconds(
        reverted, cfg.recovery_within_s,
        lambda: not any(a.name == "TTFTHigh" for a in drill.observer.prometheus.alerts()),
        awaited="TTFTHigh resolved after the revert"))
    return None


def judge_users(drill: Drill, results: tuple[RequestResult, ...],
                retries_before: dict[str, float], answers_before: tuple[float, float],
                held: float) -> None:
    """What users got through the spike, on the stack's evidence."""
    judge_gateway_retries(drill, retries_before)
    judge_error_ratio(drill, answers_before)
    outcomes = user_outcomes(results, excused=lambda r: cut_mid_stream(r)
                             and r.sent_at < held < r.finished_at)
    drill.measure("users_clean_errors", outcomes.clean_errors)
    drill.measure("streams_cut_when_the_node_went_silent", outcomes.excused)
    drill.check("every user got a success or the stack's clean error with its request id",
                not outcomes.unclear,
                f"{len(outcomes.unclear)} of {outcomes.users}: {list(outcomes.unclear[:5])}")


def judge_gateway_retries(drill: Drill, before: dict[str, float]) -> None:
    after = gateway_retries(drill)
    moved = {gw: after[gw] - before[gw] for gw in after}
    drill.measure("gateway_retries", sum(moved.values()))
    drill.check("the gateways retried around the node (vllm_router_retries_total moved)",
                sum(moved.values()) > 0, f"retries by gateway: {moved}")


def judge_error_ratio(drill: Drill, before: tuple[float, float]) -> None:
    cfg = drill.config.timeout_spike
    requests, errors = (now - then for now, then in
                        zip(front_door_answers(drill), before, strict=True))
    ratio = errors / requests if requests else 1.0
    drill.measure("front_door_5xx_ratio", ratio)
    drill.check("the front door's 5xx ratio during the spike stays within budget",
                requests > 0 and ratio <= cfg.max_error_ratio,
                f"{errors:.0f} 5xx of {requests:.0f} requests "
                f"(budget {cfg.max_error_ratio:.0%})")


def test_timeout_spike(start_drill: StartDrill) -> None:
    with start_drill("timeout_spike") as drill:
        run_timeout_spike(drill)
