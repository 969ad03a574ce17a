"""Gateway failover: one of the two gateways killed, then cut off by the fault proxy.

Killed, the stack's supervisor brings the gateway back (about a second: faster than the
front door's checks can mark it DOWN), so the kill is judged on the restart and on the
users: the supervisor restarts it within bound, the other gateway's own request counter
(``vllm_router_requests_total``) shows it carried traffic meanwhile, and the users whose
requests were in flight or sent during the gap failed within budget.

Cut off (alive, unreachable: nothing restarts it), the front door must switch: HAProxy's
exporter marks the gateway DOWN within its own check budget, ``inter x fall`` plus one
check interval (from the topology), counted from the fault proxy's own record of closing
the gateway's listener (its API may confirm later on a busy host); traffic reaches the
other gateway by its own counter; losses within budget; FrontDoorBackendDown fires, is
delivered to its receiver through Alertmanager, and resolves once the gateway is back.
"""

from __future__ import annotations

import time

import httpx
import pytest

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    ClientPolicy,
    FaultBase,
    KillProcess,
    LoadSpec,
    NotReady,
    Probe,
    ProxyDisabled,
    RequestResult,
    Timeouts,
    Wait,
    await_property,
    await_recovery,
    ensure_steady,
    fault_proxy_closed,
    front_door_counter,
    front_door_log,
    front_door_state,
    gateway_counter,
    parse_lengths,
    restarted_by_the_stack,
    stack_error_problem,
)
from harness.errors import Unreachable
from harness.load.stats import Window
from harness.topology import Topology

VICTIM, SURVIVOR = "gateway-a", "gateway-b"
SWITCH_POLL_S = 0.1  # how often the drill reads HAProxy's view while the switch is due
ALLOWED_ALERTS = {"FrontDoorBackendDown", "ErrorRateHigh", "TTFTHigh", "TPSDrop"}


def steady_traffic(drill: Drill) -> LoadSpec:
    cfg = drill.config.gateway_failover
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=cfg.requests * 100, concurrency=cfg.concurrency,
                    duration_s=120, drain_s=30,
                    output_len=parse_lengths("32", field_name="output_len"),
                    policy=ClientPolicy(timeouts=Timeouts(connect=2.0, read=10.0)))


def make_fault(drill: Drill, how: str) -> FaultBase:
    if how == "kill":
        return KillProcess(drill.stack, VICTIM,
                           restart_within_s=drill.config.gateway_failover.restart_within_s)
    return ProxyDisabled(drill.stack.fault_proxy, VICTIM)


def switch_budget_s(topology: Topology, slack_s: float = 0.0) -> float:
    """The front door's own detection budget: ``fall`` failed checks ``inter`` apart, plus
    one interval for the fault to land between two checks, plus the drill's poll, plus
    ``slack_s`` for HAProxy's check scheduling on a loaded host (``drills.yaml``)."""
    fd = topology.front_door
    return (fd.fall + 1) * fd.check_interval_ms / 1000 + SWITCH_POLL_S + slack_s


def survivor_requests(drill: Drill) -> float:
    """Requests the other gateway itself counted (its own vllm-router counter)."""
    return gateway_counter(drill, SURVIVOR, "vllm_router_requests_total")


def run_gateway_failover(drill: Drill, how: str) -> None:
    ensure_steady(drill)
    cfg = drill.config.gateway_failover
    load = drill.load(steady_traffic(drill)).start()
    await_property(drill, "traffic flows before the fault", 30,
                   lambda: len(load.results()) >= cfg.concurrency)
    drill.measure("in_flight_on_victim_before", front_door_counter(
        drill, "haproxy_server_current_sessions", proxy="gateways", server=VICTIM))
    fault = make_fault(drill, how)
    requested = time.time()
    with fault:
        applied = drill.phase("fault applied")
        if how == "cut":
            judge_switch(drill, requested, applied)
            drill.expect_alert("FrontDoorBackendDown", within=cfg.alert_within_s,
                               labels={"server": VICTIM})
        survivor_before = survivor_requests(drill)  # before: every success after the mark
        after_switch = drill.phase("switched")         # is in gateway-b's count
        await_property(drill, "requests keep succeeding through the other gateway", 30,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > after_switch) >= cfg.concurrency * 2)
        moved = survivor_requests(drill) - survivor_before
    reverted = drill.phase("fault reverted")
    if isinstance(fault, KillProcess):
        restarted_by_the_stack(drill, fault, cfg.restart_within_s)
    drill.measure("survivor_requests_after_switch", moved)
    drill.check(f"traffic reached {SURVIVOR} (its own vllm_router_requests_total)",
                moved >= cfg.concurrency,
                f"{SURVIVOR} counted {moved:.0f} requests after the fault")
    drill.measure("recovery_s", await_recovery(
        drill, f"front door takes {VICTIM} back", since=reverted, within=cfg.alert_within_s,
        check=lambda: front_door_state(drill, VICTIM) == "UP",
        seen=lambda: front_door_state(drill, VICTIM)))
    load.stop()
    results = load.wait(within=60)
    # from the SIGKILL itself: the requests it cut end before the "applied" mark, taken
    # once the death was seen (the same gap made two other drills miss their cut streams)
    hit = fault.observed.applied_at if isinstance(fault, KillProcess) else None
    judge_losses(drill, results, Window(hit or applied, reverted))
    if how == "cut":
        drill.expect_alert("FrontDoorBackendDown", "resolved", within=cfg.alert_within_s)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def judge_switch(drill: Drill, requested: float, applied: float) -> None:
    """When the front door marked the gateway DOWN, by its own log (HAProxy's ``Server
    gateways/gateway-a is DOWN`` line, stamped to the microsecond), from the moment the
    fault took effect, against its own budget. The fault took effect when the fault proxy
    closed the gateway's listener, by its own log (``Terminated proxy``): its API may
    answer later on a busy host (0.7 s in a compose run, with the front door's first failed
    check 0.3 s after that answer). Should its log not say, the moment the fault was asked
    for stands in, which is earlier, so it never flatters. The drill polls HAProxy's
    exporter (every ``SWITCH_POLL_S``) to know when to read the log; should the log not
    say, the poll's answer time stands in, which is later."""
    budget = switch_budget_s(drill.stack.topology,
                             drill.config.gateway_failover.switch_slack_s)

    def down_at() -> Probe[float]:
        state = front_door_state(drill, VICTIM)
        return Probe(done=state == "DOWN", value=time.time(), seen=state)

    prop = f"front door takes {VICTIM} out (HAProxy marks it DOWN)"
    try:
        polled = Wait(within=drill.config.gateway_failover.alert_within_s,
                      interval=SWITCH_POLL_S,
                      transient=(httpx.HTTPError, OSError, Unreachable)).until(prop, down_at)
    except NotReady as exc:
        drill.check(prop, False, str(exc))
        raise  # unreachable: check raised
    polled = polled or time.time()
    closed = fault_proxy_closed(drill, VICTIM, since=requested)
    took_effect = closed or requested
    since = ("the fault proxy closed the gateway's listener (the proxy's log)"
             if closed is not None else "the fault was asked for (the fault proxy's log "
                                        "does not say when it closed the listener)")
    drill.measure("fault_effect_s", took_effect - requested)
    log = front_door_log(drill)
    logged = log.marked(VICTIM, "DOWN", since=requested)
    source = ("the front door's log" if logged is not None
              else "the front door's exporter, polled (no log line)")
    switch = drill.measure("switch_s", (logged or polled) - took_effect)
    drill.measure("switch_polled_s", polled - took_effect)
    drill.check(prop, True, f"after {switch:.2f}s ({source})")
    checks = [c.describe(since=took_effect) for c in log.checks_failed(VICTIM, since=requested)]
    drill.check(f"front door takes {VICTIM} out within its check budget", switch <= budget,
                f"{switch:.2f}s after {since}, by {source}; the poll saw it after "
                f"{polled - took_effect:.2f}s (budget {budget:.2f}s: inter x fall, plus one "
                f"interval, the {SWITCH_POLL_S}s poll and the scheduling slack); the fault "
                f"took effect {took_effect - requested:.2f}s after it was asked for, and its "
                f"API confirmed it after {applied - requested:.2f}s; the front door's failed "
                f"checks: {checks or 'none logged'}")


def judge_losses(drill: Drill, results: tuple[RequestResult, ...], fault: Window) -> None:
    """Every request the fault could touch: in flight when it hit (sent before, finished
    after) or sent while it held."""
    cfg = drill.config.gateway_failover
    touched = [r for r in results if r.sent_at < fault.end and r.finished_at > fault.start]
    in_flight = [r for r in touched if r.sent_at < fault.start]
    failed = [r for r in touched if not r.ok]
    drill.measure("requests_in_flight_at_fault", len(in_flight))
    drill.measure("failed_requests", len(failed))
    drill.check("requests lost to the failover are bounded",
                len(failed) <= cfg.max_failed_requests,
                f"{len(failed)} failed of {len(touched)} touched by the fault "
                f"({len(in_flight)} in flight when it hit; budget {cfg.max_failed_requests}); "
                f"first: {[stack_error_problem(r) for r in failed[:3]]}")


@pytest.mark.parametrize("how", ["kill", "cut"])
def test_gateway_failover(start_drill: StartDrill, how: str) -> None:
    with start_drill(f"gateway_failover_{how}") as drill:
        run_gateway_failover(drill, how)
