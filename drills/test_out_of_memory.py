"""Out of memory: (a) the caps hold; (b) a real kernel OOM kill of one node.

(a) Oversized prompts and max_tokens get a 400 with a useful message through the
front door, and a burst of long requests queues or preempts instead of crashing.
(b) One node is capped just above its usage and pushed over, so the kernel kills it:
NodeOOMKilled fires, traffic moves to the healthy node, the node is restarted and
rejoins (it serves requests again).
"""

from __future__ import annotations

from harness.drill.probes import await_property, completion, gateways_see, node_counter
from harness.drill.run import DrillRun
from harness.drill.steady import ensure_steady
from harness.drill.traffic import open_loop_traffic
from harness.faults.memory import OOMKillNode
from harness.load import ClientPolicy, LoadSpec, RetryPolicy, Timeouts, parse_lengths

VICTIM = "node2"
ALLOWED_ALERTS = {"NodeOOMKilled", "NodeDown", "EngineUnhealthy", "GatewayBackendDown",
                  "CircuitOpen", "ErrorRateHigh", "TTFTHigh", "TPSDrop", "QueueBacklog",
                  "KVCacheSaturated"}


def expect_rejected(drill: DrillRun, what: str, words: int, max_tokens: int,
                    mentions: str) -> None:
    response = completion(drill, drill.stack.front_door_url, tokens=max_tokens,
                          prompt="word " * words)
    error = response.json().get("error", {}) if response.status_code == 400 else {}
    message = str(error.get("message", ""))
    drill.check(f"{what} gets a 400 with a useful message",
                response.status_code == 400 and mentions in message and bool(error.get("type")),
                f"HTTP {response.status_code}: {message[:160]}")


def run_oom_caps(drill: DrillRun) -> None:
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


def run_oom_kill(drill: DrillRun) -> None:
    ensure_steady(drill)
    cfg = drill.config.oom
    policy = ClientPolicy(timeouts=Timeouts(connect=2.0, read=10.0),
                          retries=RetryPolicy(max_attempts=3))
    spec = open_loop_traffic(drill, cfg.rate_per_s, policy)
    load = drill.load(spec).start()
    fault = OOMKillNode(drill.stack, VICTIM, headroom_mib=cfg.headroom_mib)
    with fault:
        killed = drill.phase("fault applied")
        kill = fault.observed.kill
        assert kill is not None  # verified by the fault's apply
        drill.measure("oom_kills", kill.oom_kills)
        drill.check("the kernel OOM-killed a process of the node", kill.oom_kills > 0,
                    f"victim {kill.victim_name} (pid {kill.victim_pid}), cap "
                    f"{kill.limit_bytes // 2**20} MiB")
        seen = drill.expect_alert("NodeOOMKilled", within=cfg.alert_within_s,
                                  labels={"node": VICTIM})
        drill.measure("detection_lag_s.NodeOOMKilled", seen.seen_at - killed)
        await_property(drill, "traffic moves to the healthy node", cfg.alert_within_s,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > killed) >= cfg.requests)
    drill.phase("fault reverted")
    ready = fault.observed.ready_after_s or 0.0
    drill.measure("restart_to_ready_s", ready)
    drill.check("the node restarts within bound", ready <= cfg.restart_within_s,
                f"{ready:.1f}s (bound {cfg.restart_within_s}s)")
    drill.check("the restarted node serves a completion",
                completion(drill, drill.stack.node_url(VICTIM)).status_code == 200)
    drill.measure("recovery_s", await_property(
        drill, "every gateway sees the node healthy again", cfg.alert_within_s,
        lambda: all(v == 1 for v in gateways_see(drill, VICTIM).values()),
        lambda: gateways_see(drill, VICTIM)))
    load.stop()
    results = load.wait(within=60)
    summary = drill.summarize("through the OOM kill", results, (killed, results[-1].sent_at
                                                                if results else killed))
    drill.check("users saw successes or clear errors through the kill",
                all(r.ok or r.error is not None for r in results),
                f"{summary.ok} ok of {summary.requests}, errors {summary.errors}")
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def test_oom_caps(start_drill) -> None:  # type: ignore[no-untyped-def]
    with start_drill("oom_caps") as drill:
        run_oom_caps(drill)


def test_oom_kill(start_drill) -> None:  # type: ignore[no-untyped-def]
    with start_drill("oom_kill") as drill:
        run_oom_kill(drill)
