"""Node partition: node1 cut off the network under load, alive but unreachable, then
put back. A fault of the container runtime (the node on the run's own network, taken
off it by the engine); skipped, saying why, on a runtime without partitions.

A partition is not a crash: no connection is refused, nothing restarts, packets go
nowhere. The fault is proven first (this host cannot open a connection to node1, which
neither answers nor refuses; else INCONCLUSIVE). Then, from the stack's own evidence:
every gateway takes node1 out of rotation (its ``vllm_router_worker_health``) within
its health checks' budget; GatewayBackendDown fires and is delivered to its receiver;
node2 carries the traffic (its own ``vllm:request_success_total``); the users' requests
touched by the partition failed within budget, and none of those that hit node1 waited
on it past the stated bound: the partition is held past that bound, so the stack must
end them itself (the proxy between gateways and nodes finds the dead path, the gateways
retry elsewhere), not the path coming back nor the user's patience; NodeDown fires for
the unreachable node and is delivered; node1 kept running through it (same process:
nobody restarted it); once healed, every gateway takes node1 back and node1 serves users
again (its own counter grows), and both alerts resolve.
"""

from __future__ import annotations

import time

import pytest

from drills.catalogue import Drill, NodePartitionConfig, StartDrill
from harness.drill import (
    ClientPolicy,
    Partition,
    RequestResult,
    Stack,
    Timeouts,
    await_property,
    await_recovery,
    ensure_steady,
    every_gateway_sees,
    gateways_see,
    hold_fault,
    node_counter,
    open_loop_traffic,
    stack_error_problem,
    worker_url,
)
from harness.load import BackgroundLoad
from harness.load.stats import Window
from harness.stack.runtime import Capability

VICTIM, SURVIVOR = "node1", "node2"
SUCCESSES = "vllm:request_success_total"
ALLOWED_ALERTS = {"GatewayBackendDown", "NodeDown", "CircuitOpen", "TTFTHigh", "TPSDrop"}


def client_policy(drill: Drill) -> ClientPolicy:
    """One attempt (the gateways retry, not the user), and a read timeout past the
    drill's bound on a stuck request: the stack must end it first."""
    bound = drill.config.node_partition.stuck_within_s
    return ClientPolicy(timeouts=Timeouts(connect=2.0, read=bound * 2))


def run_node_partition(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.node_partition
    pid_before = drill.stack.pid(VICTIM)
    load = drill.load(open_loop_traffic(drill, cfg.rate_per_s, client_policy(drill))).start()
    await_property(drill, "traffic flows before the fault", 30,
                   lambda: sum(1 for r in load.results() if r.ok) >= cfg.requests // 2)
    fault = Partition(drill.stack, VICTIM)
    with fault:
        applied = drill.phase("fault applied")
        drill.check(f"{VICTIM} is unreachable from this host (the partition held)", True,
                    fault.observed.unreachable)
        drill.measure("out_of_rotation_s", await_recovery(
            drill, f"every gateway takes {VICTIM} out of rotation", since=applied,
            within=cfg.out_within_s, check=lambda: every_gateway_sees(drill, VICTIM, healthy=False),
            seen=lambda: gateways_see(drill, VICTIM), since_what="the cut"))
        drill.expect_alert("GatewayBackendDown", within=cfg.alert_within_s,
                           labels={"worker": worker_url(drill, VICTIM)})
        survivor_before = node_counter(drill, SURVIVOR, SUCCESSES)
        taken_out = drill.phase("taken out")
        await_property(drill, f"requests keep succeeding on {SURVIVOR}", cfg.alert_within_s,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > taken_out) >= cfg.requests)
        moved = node_counter(drill, SURVIVOR, SUCCESSES) - survivor_before
        # held past the bound on a stuck request: a stack that only waits for the path to
        # come back would pass a short partition
        hold_fault(drill, "no request waits on the cut-off node past the bound",
                   until=applied + cfg.hold_s, holds=lambda: stuck(load, cfg) == 0,
                   seen=lambda: f"{stuck(load, cfg)} requests in flight longer than "
                                f"{cfg.stuck_within_s:g}s")
        down = drill.expect_alert("NodeDown", within=cfg.alert_within_s,
                                  labels={"node": VICTIM})
        if down.active_at is not None:  # the condition's start by Prometheus, not our read
            drill.measure("fault_to_pending_s.NodeDown", down.active_at - applied)
    healed = drill.phase("fault reverted")
    drill.check(f"traffic reached {SURVIVOR} (its own {SUCCESSES})", moved >= cfg.requests,
                f"{SURVIVOR} answered {moved:.0f} requests while {VICTIM} was cut off")
    drill.check(f"{VICTIM} kept running through the partition (nobody restarted it)",
                drill.stack.pid(VICTIM) == pid_before and drill.stack.is_running(VICTIM),
                f"pid {pid_before} before, {drill.stack.pid(VICTIM)} after")
    drill.measure("back_in_rotation_s", await_recovery(
        drill, f"every gateway takes {VICTIM} back", since=healed, within=cfg.back_within_s,
        check=lambda: every_gateway_sees(drill, VICTIM, healthy=True),
        seen=lambda: gateways_see(drill, VICTIM)))
    victim_before = node_counter(drill, VICTIM, SUCCESSES)
    await_property(drill, f"{VICTIM} serves users again (its own {SUCCESSES})",
                   cfg.back_within_s,
                   lambda: node_counter(drill, VICTIM, SUCCESSES) > victim_before)
    load.stop()
    results = load.wait(within=cfg.stuck_within_s * 2 + 30)
    judge_users(drill, results, Window(applied, healed))
    for alert, labels in (("GatewayBackendDown", {"worker": worker_url(drill, VICTIM)}),
                          ("NodeDown", {"node": VICTIM})):
        drill.expect_alert(alert, "resolved", within=cfg.alert_within_s, labels=labels)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def stuck(load: BackgroundLoad, cfg: NodePartitionConfig) -> int:
    """The users' requests in flight for longer than the bound."""
    return load.in_flight_sent_before(time.time() - cfg.stuck_within_s)


def judge_users(drill: Drill, results: tuple[RequestResult, ...], cut: Window) -> None:
    """Every request the partition could touch: in flight when it hit or sent while it
    held. How long the longest waited is the stack's bound on a stuck request."""
    cfg = drill.config.node_partition
    touched = [r for r in results if r.sent_at < cut.end and r.finished_at > cut.start]
    failed = [r for r in touched if not r.ok]
    longest = max((r.finished_at - max(r.sent_at, cut.start) for r in touched), default=0.0)
    drill.measure("requests_touched", len(touched))
    drill.measure("failed_requests", len(failed))
    drill.measure("longest_wait_after_cut_s", longest)
    drill.check("requests lost to the partition are bounded",
                len(failed) <= cfg.max_failed_requests,
                f"{len(failed)} failed of {len(touched)} touched (budget "
                f"{cfg.max_failed_requests}); first: "
                f"{[stack_error_problem(r) for r in failed[:3]]}")
    drill.check("no request waits on the cut-off node past the bound",
                longest <= cfg.stuck_within_s,
                f"the longest ended {longest:.1f}s after the cut (bound {cfg.stuck_within_s:g}s)")


def test_node_partition(start_drill: StartDrill, stack: Stack) -> None:
    if Capability.NETWORK_PARTITION not in stack.capabilities:
        pytest.skip(f"the {stack.runtime.name} runtime cannot cut a node off the network "
                    "(the container runtime can, with node_network in the stack file)")
    with start_drill("node_partition") as drill:
        run_node_partition(drill)
