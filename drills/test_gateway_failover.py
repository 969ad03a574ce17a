"""Gateway failover: one of the two gateways killed, then cut off by the fault proxy.

Must hold: the front door's health checks take the gateway out within its check
budget and all traffic moves to the other one; requests failed during the switch are
counted and bounded; FrontDoorBackendDown fires and resolves once the gateway is back.
"""

from __future__ import annotations

import pytest

from harness.drill.probes import await_property, front_door_state
from harness.drill.run import DrillRun
from harness.drill.steady import ensure_steady
from harness.faults.base import FaultBase
from harness.faults.network import ProxyDisabled
from harness.faults.process import KillProcess
from harness.load import ClientPolicy, LoadSpec, Timeouts, parse_lengths

VICTIM = "gateway-a"
ALLOWED_ALERTS = {"FrontDoorBackendDown", "ErrorRateHigh", "TTFTHigh", "TPSDrop"}


def steady_traffic(drill: DrillRun) -> LoadSpec:
    cfg = drill.config.gateway_failover
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=cfg.requests * 100, concurrency=cfg.concurrency,
                    duration_s=120, drain_s=30,
                    output_len=parse_lengths("32", field_name="output_len"),
                    policy=ClientPolicy(timeouts=Timeouts(connect=2.0, read=10.0)))


def make_fault(drill: DrillRun, how: str) -> FaultBase:
    if how == "kill":
        return KillProcess(drill.stack, VICTIM)
    return ProxyDisabled(drill.stack.fault_proxy, VICTIM)


def run_gateway_failover(drill: DrillRun, how: str) -> None:
    ensure_steady(drill)
    cfg = drill.config.gateway_failover
    load = drill.load(steady_traffic(drill)).start()
    await_property(drill, "traffic flows before the fault", 30,
                   lambda: len(load.results()) >= cfg.concurrency)
    with make_fault(drill, how):
        applied = drill.phase("fault applied")
        switch = await_property(drill, f"front door takes {VICTIM} out within its check budget",
                                cfg.switch_within_s,
                                lambda: front_door_state(drill, VICTIM) == "DOWN",
                                lambda: front_door_state(drill, VICTIM))
        drill.measure("switch_s", switch)
        drill.expect_alert("FrontDoorBackendDown", within=cfg.alert_within_s,
                           labels={"server": VICTIM})
        after_switch = drill.phase("switched")
        await_property(drill, "requests keep succeeding through the other gateway", 30,
                       lambda: sum(1 for r in load.results()
                                   if r.ok and r.sent_at > after_switch) >= cfg.concurrency * 2)
    reverted = drill.phase("fault reverted")
    drill.measure("recovery_s", await_property(
        drill, f"front door takes {VICTIM} back", cfg.alert_within_s,
        lambda: front_door_state(drill, VICTIM) == "UP", lambda: front_door_state(drill, VICTIM)))
    load.stop()
    results = load.wait(within=60)
    summary = drill.summarize("through the failover", results, (applied, reverted))
    failed = summary.requests - summary.ok
    drill.measure("failed_requests", failed)
    drill.check("requests lost during the switch are bounded", failed <= cfg.max_failed_requests,
                f"{failed} failed of {summary.requests} (budget {cfg.max_failed_requests}); "
                f"errors {summary.errors}")
    drill.expect_alert("FrontDoorBackendDown", "resolved", within=cfg.alert_within_s)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


@pytest.mark.parametrize("how", ["kill", "cut"])
def test_gateway_failover(start_drill, how: str) -> None:  # type: ignore[no-untyped-def]
    with start_drill(f"gateway_failover_{how}") as drill:
        run_gateway_failover(drill, how)
