"""Node restart: SIGKILL, then SIGTERM, of a node with streams in flight.

Must hold: in-flight streams end with a clean error or complete through the gateway,
never hang; every gateway marks the node down, then up again; no engine process
outlives the node; restart-to-ready and the TTFT of the first requests after the
restart (warm-up) are measured and bounded; NodeDown fires and resolves.
"""

from __future__ import annotations

import pytest

from harness.drill.probes import await_property, gateways_see, node_counter, streamed_ttft
from harness.drill.run import DrillRun
from harness.drill.steady import ensure_steady
from harness.faults.process import KillProcess, TerminateProcess
from harness.load import ClientPolicy, LoadSpec, Timeouts, parse_lengths
from harness.stack.processes import group_members, tagged_processes

VICTIM = "node1"
ALLOWED_ALERTS = {"NodeDown", "GatewayBackendDown", "CircuitOpen", "EngineUnhealthy",
                  "ErrorRateHigh", "TTFTHigh", "TPSDrop", "QueueBacklog", "KVCacheSaturated"}


def streams_in_flight(drill: DrillRun) -> LoadSpec:
    cfg = drill.config.node_restart
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=10 * cfg.streams * int(cfg.stream_timeout_s),
                    concurrency=cfg.streams,
                    duration_s=cfg.stream_timeout_s * 2, drain_s=cfg.stream_timeout_s,
                    output_len=parse_lengths(str(cfg.output_tokens), field_name="output_len"),
                    policy=ClientPolicy(timeouts=Timeouts(connect=2.0,
                                                          stream_idle=cfg.stream_timeout_s)))


def run_node_restart(drill: DrillRun, graceful: bool) -> None:
    ensure_steady(drill)
    cfg = drill.config.node_restart
    load = drill.load(streams_in_flight(drill)).start()
    await_property(drill, f"streams in flight on {VICTIM} before the fault", 30,
                   lambda: node_counter(drill, VICTIM, "vllm:num_requests_running") > 0,
                   lambda: {n: node_counter(drill, n, "vllm:num_requests_running")
                            for n in drill.stack.node_names})
    pid = drill.stack.pid(VICTIM)
    fault = TerminateProcess(drill.stack, VICTIM) if graceful else KillProcess(drill.stack,
                                                                                 VICTIM)
    with fault:
        killed_at = drill.phase("fault applied")
        orphans = sorted(set(group_members(pid or 0)) |
                         set(tagged_processes(drill.stack.run_id, VICTIM)))
        drill.check("no engine process outlives the node", not orphans, f"alive: {orphans}")
        await_property(drill, "every gateway marks the node down", cfg.mark_down_within_s,
                       lambda: all(v == 0 for v in gateways_see(drill, VICTIM).values()),
                       lambda: gateways_see(drill, VICTIM))
        load.stop()
        results = load.wait(within=cfg.stream_timeout_s * 2)
        drill.phase("fault reverted")
    summary = drill.summarize("streams through the fault", results)
    in_flight = [r for r in results if r.sent_at < killed_at < r.finished_at]
    drill.measure("streams_in_flight_at_fault", len(in_flight))
    drill.check("streams were in flight when the node died", bool(in_flight),
                f"{len(in_flight)} of {len(results)}")
    hung = [r.request_id for r in results if r.elapsed_s > cfg.stream_timeout_s * 1.5]
    drill.check("no stream hangs past the client timeout", not hung, f"hung: {hung}")
    unclean = [r.request_id for r in results
               if not r.ok and r.error is None and r.cancelled is None]
    drill.check("in-flight streams complete or end with a typed error", not unclean,
                f"{summary.ok} completed, errors {summary.errors}, untyped: {unclean}")
    ready = fault.observed.ready_after_s or 0.0
    drill.measure("restart_to_ready_s", ready)
    drill.check("restart to ready within bound", ready <= cfg.restart_within_s,
                f"{ready:.1f}s (bound {cfg.restart_within_s}s)")
    drill.measure("recovery_s", await_property(
        drill, "every gateway marks the node up again", cfg.mark_down_within_s,
        lambda: all(v == 1 for v in gateways_see(drill, VICTIM).values()),
        lambda: gateways_see(drill, VICTIM)))
    warmup = max(streamed_ttft(drill, drill.stack.node_url(VICTIM))
                 for _ in range(cfg.warmup_requests))
    drill.measure("warmup_ttft_s", warmup)
    drill.check("first requests after restart within the warm-up TTFT bound",
                warmup <= cfg.warmup_ttft_s, f"{warmup:.3f}s (bound {cfg.warmup_ttft_s}s)")
    drill.expect_alert("NodeDown", "resolved", within=cfg.mark_down_within_s * 2)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


@pytest.mark.parametrize("graceful", [False, True], ids=["sigkill", "sigterm"])
def test_node_restart(start_drill, graceful: bool) -> None:  # type: ignore[no-untyped-def]
    name = "node_restart_sigterm" if graceful else "node_restart_sigkill"
    with start_drill(name) as drill:
        run_node_restart(drill, graceful)
