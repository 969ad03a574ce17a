"""Timeout spike: latency, then a timeout, between the gateways and one node, under load.

Must hold: clients retry with jittered backoff within their max attempts; every user
gets a success or a clear error (type, code or message, request id), never a hang past
the client's timeout budget; TTFTHigh fires during the latency and resolves after the
revert; the stack returns to steady state (recovery time measured).
"""

from __future__ import annotations

from harness.drill.probes import await_property
from harness.drill.run import DrillRun
from harness.drill.steady import ensure_steady
from harness.drill.traffic import open_loop_traffic
from harness.faults.network import Latency, Timeout
from harness.load import ClientPolicy, LoadSpec, RequestResult, RetryPolicy, Timeouts

VICTIM = "node1"
ALLOWED_ALERTS = {"TTFTHigh", "GatewayBackendDown", "CircuitOpen", "ErrorRateHigh", "TPSDrop"}


def traffic_with_hygiene(drill: DrillRun) -> LoadSpec:
    cfg = drill.config.timeout_spike
    timeouts = Timeouts(connect=2.0, read=cfg.client_timeout_s,
                        stream_idle=cfg.client_timeout_s)
    retries = RetryPolicy(max_attempts=cfg.max_attempts, base_backoff_s=0.2, max_backoff_s=2.0)
    return open_loop_traffic(drill, cfg.rate_per_s,
                             ClientPolicy(timeouts=timeouts, retries=retries))


def client_budget_s(drill: DrillRun) -> float:
    """The longest a user may wait: every attempt timing out, plus the backoffs."""
    cfg = drill.config.timeout_spike
    return cfg.max_attempts * (cfg.client_timeout_s + 2.0) + cfg.max_attempts * 2.0


def is_clean(result: RequestResult) -> bool:
    if result.ok:
        return True
    error = result.error
    return bool(result.request_id) and error is not None and bool(
        error.message or error.type or error.code)


def run_timeout_spike(drill: DrillRun) -> None:
    ensure_steady(drill)
    cfg, proxy = drill.config.timeout_spike, drill.stack.fault_proxy
    load = drill.load(traffic_with_hygiene(drill)).start()
    with Latency(proxy, VICTIM, latency_ms=cfg.latency_ms):
        drill.phase("latency applied")
        fired = drill.expect_alert("TTFTHigh", within=cfg.alert_within_s,
                                   labels={"source": "client"})
        drill.measure("ttft_alert_after_s", fired.waited_s)
    drill.phase("latency reverted")
    with Timeout(proxy, VICTIM, timeout_ms=0):
        held = drill.phase("timeout applied")
        await_property(drill, "requests keep completing while the node holds connections",
                       cfg.alert_within_s,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > held) >= cfg.requests)
    reverted = drill.phase("fault reverted")
    resolved = drill.expect_alert("TTFTHigh", "resolved", within=cfg.recovery_within_s)
    drill.measure("recovery_s", resolved.waited_s)
    load.stop()
    results = load.wait(within=client_budget_s(drill) + 30)
    summary = drill.summarize("through the spike", results, (drill.started_at, reverted))
    too_long = [r.request_id for r in results if r.elapsed_s > client_budget_s(drill)]
    drill.check("no user waits past the client's timeout budget", not too_long,
                f"{len(too_long)} over {client_budget_s(drill):.0f}s: {too_long[:5]}")
    unclear = [r.request_id for r in results if not is_clean(r)]
    drill.check("every failure is a clear error with a request id", not unclear,
                f"unclear: {unclear[:5]}; errors {summary.errors}")
    over = [r.request_id for r in results if r.retries >= cfg.max_attempts]
    drill.check("retries stay within max attempts", not over, f"over: {over[:5]}")
    drill.measure("client_retries", summary.retries)
    drill.check("clients retried with backoff during the timeout", summary.retries > 0,
                f"{summary.retries} retries; errors {summary.errors}")
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def test_timeout_spike(start_drill) -> None:  # type: ignore[no-untyped-def]
    with start_drill("timeout_spike") as drill:
        run_timeout_spike(drill)
