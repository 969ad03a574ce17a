"""Out of memory: (a) the caps hold; (b) a real kernel OOM kill of one node.

(a) Oversized prompts and max_tokens get a 400 with a useful message through the
front door, and a burst of long requests queues or preempts instead of crashing.
(b) One node is capped just above its usage and pushed over, so the kernel kills it.
The fault is proven first (the kernel's victim is one of node2's own processes, by
cgroup and pid, and node2's server went down): else INCONCLUSIVE. Then every gateway
takes node2 out of rotation, NodeOOMKilled, NodeDown and GatewayBackendDown fire and
are delivered to their receivers, traffic moves to the healthy node, and the stack's
supervisor (never the drill) restarts node2 within bound: restart-to-ready is timed
from the kill.
"""

from __future__ import annotations

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    ClientPolicy,
    LoadSpec,
    OOMKillNode,
    RetryPolicy,
    Timeouts,
    await_precondition,
    await_property,
    await_recovery,
    completion,
    ensure_steady,
    gateways_see,
    node_counter,
    open_loop_traffic,
    parse_lengths,
    restarted_by_the_stack,
    worker_url,
)

VICTIM = "node2"
ALLOWED_ALERTS = {"NodeOOMKilled", "NodeDown", "EngineUnhealthy", "GatewayBackendDown",
                  "CircuitOpen", "ErrorRateHigh", "TTFTHigh", "TPSDrop", "QueueBacklog",
                  "KVCacheSaturated"}


def expect_rejected(drill: Drill, what: str, words: int, max_tokens: int,
                    mentions: str) -> None:
    response = completion(drill, drill.stack.front_door_url, tokens=max_tokens,
                          prompt="word " * words)
    error = response.json().get("error", {}) if response.status_code == 400 else {}
    message = str(error.get("message", ""))
    drill.check(f"{what} gets a 400 with a useful message",
                response.status_code == 400 and mentions in message and bool(error.get("type")),
                f"HTTP {response.status_code}: {message[:160]}")


def run_oom_caps(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.oom
    limit = str(drill.stack.topology.model.max_model_len)
    expect_rejected(drill, "an oversized prompt", cfg.oversized_prompt_words, 16, limit)
    expect_rejected(drill, "an oversized max_tokens", 2, cfg.oversized_max_tokens, "max_tokens")
    before = {n: node_counter(drill, n, "vllm:num_preemptions_total") for n in
              drill.stack.node_names}
    burst = LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                     max_requests=cfg.burst_requests, concurrency=cfg.burst_requests,
                     duration_s=120, output_len=parse_lengths(str(cfg.burst_output_tokens),
                                                              field_name="burst_output_tokens"))
    results = drill.load(burst).start().wait()
    summary = drill.summarize("burst", results)
    drill.check("a burst of long requests completes (queued, not crashed)",
                summary.ok == cfg.burst_requests, f"{summary.ok} of {summary.requests} ok, "
                f"errors {summary.errors}")
    preempted = sum(node_counter(drill, n, "vllm:num_preemptions_total") - before[n]
                    for n in drill.stack.node_names)
    drill.measure("burst_preemptions", preempted)
    drill.check("the bounded KV cache preempted instead of failing", preempted > 0,
                f"{preempted} preemptions")
    drill.expect_no_unexpected_alerts({"QueueBacklog", "KVCacheSaturated", "TTFTHigh",
                                       "TPSDrop"})


def prove_the_node_was_killed(drill: Drill, fault: OOMKillNode) -> None:
    """The fault's effect, before anything is judged: the kernel OOM-killed one of
    node2's own processes (the victim it names in node2's cgroup is a pid of node2's
    from before the fault, so not the balloon) and node2's server went down with it.
    Without that proof the drill is INCONCLUSIVE."""
    kill = fault.observed.kill
    assert kill is not None  # verified by the fault's apply
    drill.measure("oom_kills", kill.oom_kills)
    victim = (f"victim {kill.victim_name} (pid {kill.victim_pid}) in {VICTIM}'s cgroup, "
              f"cap {kill.limit_bytes // 2**20} MiB, {VICTIM}'s processes "
              f"{list(fault.observed.node_pids)}")
    if not fault.observed.victim_was_the_node:
        raise drill.inconclusive(f"the kernel OOM-killed a process of {VICTIM}", victim)
    drill.check(f"the kernel OOM-killed a process of {VICTIM}", True, victim)
    await_precondition(drill, f"{VICTIM}'s server goes down with its engine",
                       drill.config.oom.alert_within_s, fault.main_process_gone,
                       lambda: f"main pid {fault.observed.killed_pid} still running")


def run_oom_kill(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.oom
    policy = ClientPolicy(timeouts=Timeouts(connect=2.0, read=10.0),
                          retries=RetryPolicy(max_attempts=3))
    spec = open_loop_traffic(drill, cfg.rate_per_s, policy)
    load = drill.load(spec).start()
    fault = OOMKillNode(drill.stack, VICTIM, headroom_mib=cfg.headroom_mib,
                        restart_within_s=cfg.restart_within_s)
    with fault:
        killed = drill.phase("fault applied")
        prove_the_node_was_killed(drill, fault)
        await_property(drill, f"every gateway takes {VICTIM} out of rotation",
                       cfg.alert_within_s,
                       lambda: all(v == 0 for v in gateways_see(drill, VICTIM).values()),
                       lambda: gateways_see(drill, VICTIM))
        seen = drill.expect_alert("NodeOOMKilled", within=cfg.alert_within_s,
                                  labels={"node": VICTIM})
        # detection and notification lags (stack-side) are recorded by expect_alert
        drill.measure("fault_to_firing_s.NodeOOMKilled", seen.seen_at - killed)
        down = drill.expect_alert("NodeDown", within=cfg.alert_within_s, labels={"node": VICTIM})
        drill.measure("fault_to_firing_s.NodeDown", down.seen_at - killed)
        # the gateways taking it out is an operator's signal too, delivered like any alert
        drill.expect_alert("GatewayBackendDown", within=cfg.alert_within_s,
                           labels={"worker": worker_url(drill, VICTIM)})
        await_property(drill, "traffic moves to the healthy node", cfg.alert_within_s,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > killed) >= cfg.requests)
    reverted = drill.phase("fault reverted")
    restarted_by_the_stack(drill, fault, cfg.restart_within_s)
    drill.check("the restarted node serves a completion",
                completion(drill, drill.stack.node_url(VICTIM)).status_code == 200)
    drill.measure("recovery_s", await_recovery(
        drill, "every gateway sees the node healthy again", since=reverted,
        within=cfg.alert_within_s,
        check=lambda: all(v == 1 for v in gateways_see(drill, VICTIM).values()),
        seen=lambda: gateways_see(drill, VICTIM)))
    load.stop()
    results = load.wait(within=60)
    summary = drill.summarize("through the OOM kill", results, (killed, results[-1].sent_at
                                                                if results else killed))
    drill.check("users saw successes or clear errors through the kill",
                all(r.ok or r.error is not None for r in results),
                f"{summary.ok} ok of {summary.requests}, errors {summary.errors}")
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def test_oom_caps(start_drill: StartDrill) -> None:
    with start_drill("oom_caps") as drill:
        run_oom_caps(drill)


def test_oom_kill(start_drill: StartDrill) -> None:
    with start_drill("oom_kill") as drill:
        run_oom_kill(drill)
