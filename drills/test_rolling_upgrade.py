"""Rolling upgrade under load: the stack's nodes onto a new model revision, one at a time,
by the stack's own procedure (the stack file's ``rollout.upgrade``,
:mod:`harness.rollout.upgrade`: drain from the gateways, finish what the node holds, stop,
start on the new revision, warm up, rejoin) while open-loop users stream through the front
door. The drill only chooses when each node's turn begins (right after the node's own log
shows it took a user's request) and watches.

Proven first, else INCONCLUSIVE: a node held users' requests in its turn, before it stopped
(an idle node's upgrade proves nothing): its engine's gauges, or its own log and the front
door's (a request it took, still being answered when the turn began). Judged on the stack's
evidence: every node upgraded (``nodes`` of them: both in the drill, node1 in its breakages)
is routed to again (every gateway's ``/workers`` lists it, its ``vllm_router_worker_health``
1), was restarted (a new process) and serves the new revision (its own ``/v1/models``); no
user's request failed through the upgrade (the front door's answers); their TTFT p95 within
the SLO (the wait for a gateway slot in the front door's log plus vLLM's own TTFT
histograms, through Prometheus, which follows their resets across the restarts); goodput
(answers the front door served per second, its log) reported; no alert but those a planned
restart raises, and none of those paged on-call (Alertmanager delivered no NodeDown for an
upgraded node: the procedure silences it for the node's turn). The stack is then taken
back to the revision it ran before, by the same procedure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    ClientPolicy,
    NodeUpgrade,
    RequestResult,
    StackFleet,
    Timeouts,
    answered_since,
    await_precondition,
    await_property,
    ensure_steady,
    every_gateway_sees,
    front_door_log,
    gateways_routing_to,
    gateways_see,
    open_loop_traffic,
    percentile,
    requests_taken_by,
    served_model_dir,
    stack_error_problem,
    upgrade_plan,
    upgrader,
)
from harness.stack.model import RECIPES
from harness.topology import Topology

#: A request the node took this recently has most of its answer still to generate (a
#: 900-token answer takes about a second here).
FRESH_S = 0.2
LOG_LINES = 50  # the tail of the node's log that holds its latest requests
#: vLLM's id of a request that came through the front door holds the stack's (``fd-...``);
#: the gateways' and the rollout controller's own probes do not.
USERS_MARK = "-fd-"
ENGINE_TTFT_BUCKETS = "vllm:time_to_first_token_seconds_bucket"
#: A node stopped on purpose is still a node Prometheus cannot scrape: NodeDown fires (the
#: procedure silences it in Alertmanager, so it pages nobody); while one node restarts the
#: other carries every user, which TTFTHigh and TPSDrop may read.
ALLOWED_ALERTS = {"NodeDown", "TTFTHigh", "TPSDrop"}
PLANNED_RESTART_ALERT = "NodeDown"
NOT_PAGED = "on-call is not paged for the planned restarts (no NodeDown delivered for them)"
NO_FAILED = "no user's request failed through the upgrade"
#: each gateway lists the node (its /workers) and its vllm_router_worker_health reads 1
#: (the gauge alone is no proof: vllm-router keeps a removed worker's last value)
ROUTED_AGAIN = "every gateway routes to every upgraded node again"


def run_rolling_upgrade(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.rolling_upgrade
    nodes = drill.stack.node_names[:cfg.nodes]
    target = RECIPES[cfg.revision].key()
    already = [n for n in nodes if served_model_dir(drill, n) == target]
    if already:
        raise drill.inconclusive(f"the nodes serve another revision than {cfg.revision}",
                                 f"{already} already serve {target}")
    pids = {n: drill.stack.pid(n) for n in nodes}
    original = drill.stack.topology
    policy = ClientPolicy(timeouts=Timeouts(connect=5.0, read=60.0))  # one attempt each
    load = drill.load(open_loop_traffic(drill, cfg.rate_per_s, policy,
                                        output_tokens=cfg.output_tokens)).start()
    started = drill.phase("load started")
    await_property(drill, "users are answered before the upgrade", cfg.traffic_within_s,
                   lambda: answered_since(load, started) >= cfg.answered)
    began = drill.phase("upgrade")
    try:
        steps = upgrade_each_when_busy(drill, nodes)
        ended = drill.phase("upgrade done")
        await_property(drill, "users are answered after the upgrade", cfg.traffic_within_s,
                       lambda: answered_since(load, ended) >= cfg.answered)
        load.stop()
        results = load.wait(within=120)
        prove_the_drain(drill, steps)
        judge_nodes(drill, nodes, target, pids)
        judge_users(drill, results, began, ended)
        drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)
        judge_on_call(drill, steps, began)
    finally:
        load.stop()
        take_back(drill, original)


def upgrade_each_when_busy(drill: Drill, nodes: Sequence[str]) -> list[NodeUpgrade]:
    """Each node's turn begins once it has just taken a user's request."""
    cfg = drill.config.rolling_upgrade
    procedure, plan = upgrader(drill), upgrade_plan(drill, cfg.revision)
    steps = []
    for node in nodes:
        await_busy(drill, node)
        step = procedure.upgrade(plan, node)
        drill.phase(f"{node} rejoined on {cfg.revision}")
        drill.measure(f"{node}_in_flight_at_start", step.in_flight_at_start)
        drill.measure(f"{node}_in_flight_at_drain", step.in_flight_at_drain)
        if step.drained_at is not None:
            drill.measure(f"{node}_drain_s", step.drained_at - step.began_at)
        drill.measure(f"{node}_start_to_ready_s", step.ready_at - step.stopped_at)
        drill.measure(f"{node}_out_of_rotation_s",
                      step.rejoined_at - (step.drained_at or step.stopped_at))
        steps.append(step)
    return steps


def await_busy(drill: Drill, node: str) -> None:
    """Until the node's own log shows it took a user's request within the last
    ``FRESH_S`` (vLLM's ``Added request`` line, to the millisecond): its answer is still
    being generated while the procedure drains it."""
    def took_afresh() -> bool:
        log = requests_taken_by(drill, node, lines=LOG_LINES)
        users = [at for rid, at in log.added_at.items() if USERS_MARK in rid]
        return bool(users) and time.time() - max(users) <= FRESH_S

    await_precondition(drill, f"{node} has just taken a user's request (its own log)",
                       drill.config.rolling_upgrade.busy_within_s, took_afresh, every=0.05)


def prove_the_drain(drill: Drill, steps: Sequence[NodeUpgrade]) -> None:
    """A node held users' requests in its turn before it stopped, so the procedure had
    work to let finish. Any of three readings proves it: its engine's running + waiting
    when the turn began, or once it was out of the gateways, or the logs (a user's
    request its own log says it took, which the front door's log shows still answering
    when the turn began). The gauges alone miss it: a busy node's API server answered
    /metrics only once it had sent a 1.4 s answer whole, and both read 0 (a CI run)."""
    front_door = front_door_log(drill)

    def by_the_logs(step: NodeUpgrade) -> list[str]:
        taken = requests_taken_by(drill, step.node)
        return [r.request_id for r in front_door.requests.values()
                if r.arrived_at < step.began_at < r.ended_at and taken.took(r.request_id)]

    held = {step.node: by_the_logs(step) for step in steps}
    for node, ids in held.items():
        drill.measure(f"{node}_users_answering_at_turn", len(ids))
    readings = ", ".join(
        f"{s.node}: {s.in_flight_at_start:g} at its turn, {s.in_flight_at_drain:g} once "
        f"drained, {len(held[s.node])} answering by the logs {held[s.node][:2]}" for s in steps)
    if not any(max(s.in_flight_at_start, s.in_flight_at_drain) > 0 or held[s.node]
               for s in steps):
        raise drill.inconclusive("a node held users' requests when its upgrade began",
                                 readings)
    drill.check("a node held users' requests when its upgrade began", True, readings)


def judge_nodes(drill: Drill, nodes: Sequence[str], target: str,
                pids: dict[str, int | None]) -> None:
    gateways = set(drill.stack.gateway_names)
    await_property(drill, ROUTED_AGAIN, drill.config.rolling_upgrade.traffic_within_s,
                   lambda: all(set(gateways_routing_to(drill, n)) == gateways
                               and every_gateway_sees(drill, n, healthy=True) for n in nodes),
                   lambda: {n: (gateways_routing_to(drill, n), gateways_see(drill, n))
                            for n in nodes})
    served = {n: served_model_dir(drill, n) for n in nodes}
    now = {n: drill.stack.pid(n) for n in nodes}
    drill.check_together(
        ("every node serves the new revision (its own /v1/models)",
         all(d == target for d in served.values()), f"{served} (expected {target})"),
        ("every node was restarted by the upgrade (a new process)",
         all(now[n] is not None and now[n] != pids[n] for n in nodes),
         f"before {pids}, after {now}"))


def judge_users(drill: Drill, results: Sequence[RequestResult], began: float,
                ended: float) -> None:
    """Every request sent until the last node rejoined is judged, those in flight when the
    upgrade began included."""
    slo = drill.config.slo.ttft_s
    touched = [r for r in results if r.sent_at < ended and r.sent_at + r.elapsed_s > began]
    failed = [r for r in touched if not r.ok]
    sent = {r.stack_request_id for r in touched}
    logged = [r for r in front_door_log(drill).between(began, ended) if r.request_id in sent]
    served = [r for r in logged if r.status == 200]
    waits = [r.queued_s for r in served if r.queued_s is not None]
    slot_wait = drill.measure("slot_wait_p95_s", percentile(waits, 95) if waits else 0.0)
    engine_ttft = drill.measure("engine_ttft_p95_s", engine_ttft_p95(drill, began, ended))
    answered = [r.ttft_s for r in touched if r.ok and r.ttft_s is not None]
    if answered:
        drill.measure("client_ttft_p95_s", percentile(answered, 95))
    drill.measure("requests_touched", len(touched))
    drill.measure("failed_requests", len(failed))
    drill.measure("upgrade_s", ended - began)
    drill.measure("goodput_per_s", len(served) / max(ended - began, 1e-9))
    drill.measure("offered_per_s", drill.config.rolling_upgrade.rate_per_s)
    drill.check_together(
        (NO_FAILED, bool(touched) and not failed,
         f"{len(failed)} of {len(touched)} failed: "
         f"{[stack_error_problem(r) or r.error for r in failed[:3]]}"),
        ("users' TTFT p95 stays within the SLO through the upgrade (slot wait p95 + "
         "engines' TTFT p95)", slot_wait + engine_ttft <= slo,
         f"{slot_wait:.2f}s + {engine_ttft:.2f}s (SLO {slo:g}s)"))


def judge_on_call(drill: Drill, steps: Sequence[NodeUpgrade], began: float) -> None:
    """No NodeDown for an upgraded node reached Alertmanager's receivers after the upgrade
    began (the webhook's deliveries), whether or not Prometheus fired it (its ``ALERTS``:
    a restart shorter than the rule's ``for:`` raises nothing to silence, said in the
    verdict)."""
    upgraded = {s.node for s in steps}
    paged = [n for n in drill.observer.webhook.notifications()
             if n.alertname == PLANNED_RESTART_ALERT and n.status == "firing"
             and n.labels.get("node") in upgraded and n.received_at >= began]
    fired = sorted({a.labels.get("node", "") for a in drill.alerts
                    if a.name == PLANNED_RESTART_ALERT and a.labels.get("node") in upgraded})
    drill.measure("planned_restart_pages", len(paged))
    silences = {s.node: len(s.silences) for s in steps}
    drill.check(NOT_PAGED, not paged,
                f"{len(paged)} delivered {[(n.labels.get('node'), n.receiver) for n in paged]}; "
                f"{PLANNED_RESTART_ALERT} fired for {fired or 'no node'} (Prometheus); "
                f"silences put by the procedure: {silences}")


def engine_ttft_p95(drill: Drill, since: float, until: float) -> float:
    """vLLM's TTFT p95 over the upgrade, from every node's histogram in Prometheus (its
    ``increase`` follows a restarted node's counters back from 0)."""
    window = max(1, math.ceil(until - since))
    query = (f"histogram_quantile(0.95, sum by (le) "
             f"(increase({ENGINE_TTFT_BUCKETS}[{window}s])))")
    samples = drill.observer.prometheus.query(query, at=until)
    if not samples or math.isnan(samples[0].value):
        raise drill.inconclusive("the engines' TTFT through the upgrade was read",
                                 f"{query}: {samples}")
    return samples[0].value


def take_back(drill: Drill, original: Topology) -> None:
    """Each node back on the revision it ran before, by the same procedure (no users
    now), and in every gateway: the next drill finds the stack it would have found. A
    node an interrupted upgrade left stopped is started first."""
    procedure = upgrader(drill)
    fleet = StackFleet(drill.stack)
    for spec in original.nodes[:drill.config.rolling_upgrade.nodes]:
        node, revision = spec.name, original.node_revision(spec)
        plan = upgrade_plan(drill, revision)
        if drill.stack.pid(node) is None:
            fleet.start_on(node, revision)
            fleet.wait_ready(node, plan.policy.ready_within_s)
        if served_model_dir(drill, node) != RECIPES[revision].key():
            procedure.upgrade(plan, node)
        procedure.gateways.add(fleet.worker_url(node))
    drill.stack.use_topology(original)


def test_rolling_upgrade(start_drill: StartDrill) -> None:
    with start_drill("rolling_upgrade") as drill:
        run_rolling_upgrade(drill)
