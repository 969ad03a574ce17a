"""A drill's alert expectations walk the lifecycle and prove delivery through Alertmanager."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from drills.catalogue import load_catalogue
from harness.drill.run import DrillRun
from harness.errors import DrillFailed, Inconclusive
from harness.stack.stack import Stack
from harness.topology import DEFAULT_STACK_FILE, load_topology
from tests.fakes import FakePrometheus, alert_json

TOPOLOGY = load_topology(DEFAULT_STACK_FILE)
STEADY_AT = 1704067000.0  # 2024-01-01T00:00:00Z is 1704067200
EVALUATED_LATER = "2100-01-01T00:00:00Z"  # the rules' last evaluation: after any "now"
NODE_DOWN = alert_json("NodeDown", "firing", node="node1", severity="critical")  # active :00.5


def _drill(prom: FakePrometheus) -> DrillRun:
    stack = cast(Stack, SimpleNamespace(topology=TOPOLOGY))
    drill = DrillRun(name="alerts", stack=stack, config=load_catalogue(), http=prom.client())
    drill.steady_at = STEADY_AT
    return drill


def _delivered(receiver: str = "harness-critical", path: str = "/alerts/critical",
               received_at: float = 1704067222.0) -> dict[str, object]:
    return {"alertname": "NodeDown", "status": "firing",
            "labels": {"alertname": "NodeDown", "severity": "critical", "node": "node1"},
            "starts_at": "2024-01-01T00:00:20.5Z", "ends_at": "", "receiver": receiver,
            "received_at": received_at, "path": path}


def test_a_firing_alert_delivered_on_its_route_records_both_lags() -> None:
    prom = FakePrometheus(alert_script=[[NODE_DOWN]], notifications=[_delivered()])
    drill = _drill(prom)
    drill.expect_alert("NodeDown", within=5, labels={"node": "node1"})
    assert [v.property for v in drill.verdicts] == ["NodeDown goes firing",
                                                   "NodeDown delivered to harness-critical"]
    assert all(v.ok for v in drill.verdicts)
    assert drill.measurements["detection_lag_s.NodeDown"] == 20.0
    assert drill.measurements["notification_lag_s.NodeDown"] == 1.5
    assert [a.state for a in drill.alerts] == ["firing", "notified"]


def test_a_firing_alert_nobody_was_told_of_fails_naming_the_receiver() -> None:
    prom = FakePrometheus(alert_script=[[NODE_DOWN]],
                          notifications=[_delivered("harness-default", "/alerts/default")])
    drill = _drill(prom)
    with pytest.raises(DrillFailed) as info:
        drill.expect_delivered(drill.observer.wait_for_alert("NodeDown", within=1), within=0.5)
    assert info.value.property == "NodeDown delivered to harness-critical"
    assert "harness-default" in info.value.detail  # what was received instead


def test_resolved_without_a_firing_in_this_drill_fails_naming_the_alert() -> None:
    prom = FakePrometheus(alert_script=[[]])  # nothing active, nothing in ALERTS
    drill = _drill(prom)
    with pytest.raises(DrillFailed) as info:
        drill.expect_alert("NodeDown", "resolved", within=0.5)
    assert info.value.property == "NodeDown goes resolved"
    assert "NodeDown never fired since" in info.value.detail
    assert prom.requests[-1].url.params["start"] == str(STEADY_AT)


def test_resolved_after_firing_in_this_drill_also_proves_the_delivery() -> None:
    fired: dict[str, object] = {
        "metric": {"alertname": "NodeDown", "alertstate": "firing", "node": "node1",
                        "severity": "critical"}, "values": [[1704067221, "1"]]}
    for_state: dict[str, object] = {
        "metric": {"alertname": "NodeDown", "node": "node1", "severity": "critical"},
                 "values": [[1704067201, "1704067200.5"]]}
    prom = FakePrometheus(alert_script=[[]], notifications=[_delivered()], matrix=[fired],
                          matrix_for={"ALERTS_FOR_STATE": [for_state]})
    drill = _drill(prom)
    drill.expect_alert("NodeDown", "resolved", within=5)
    assert [a.state for a in drill.alerts] == ["resolved", "notified"]
    assert drill.measurements["detection_lag_s.NodeDown"] == 20.0


def test_resolved_after_a_proven_firing_keeps_the_firing_lags_and_one_record() -> None:
    fired: dict[str, object] = {
        "metric": {"alertname": "NodeDown", "alertstate": "firing", "node": "node1",
                        "severity": "critical"}, "values": [[1704067221, "1"]]}
    for_state: dict[str, object] = {
        "metric": {"alertname": "NodeDown", "node": "node1", "severity": "critical"},
                 "values": [[1704067201, "1704067200"]]}  # whole seconds: 0.5 s early
    prom = FakePrometheus(alert_script=[[NODE_DOWN], []], notifications=[_delivered()],
                          matrix=[fired], matrix_for={"ALERTS_FOR_STATE": [for_state]})
    drill = _drill(prom)
    drill.expect_alert("NodeDown", within=5)
    drill.expect_alert("NodeDown", "resolved", within=5)
    assert drill.measurements["detection_lag_s.NodeDown"] == 20.0  # from activeAt, not 20.5
    assert [a.state for a in drill.alerts] == ["firing", "notified", "resolved"]
    assert [v.ok for v in drill.verdicts] == [True] * 4


def test_a_firing_active_before_the_fault_is_not_its_effect() -> None:
    prom = FakePrometheus(alert_script=[[NODE_DOWN]], notifications=[_delivered()])
    drill = _drill(prom)
    with pytest.raises(Inconclusive) as info:
        drill.expect_alert("NodeDown", within=5, set_off_after=1704067201.0)  # active :00.5
    assert info.value.what == "NodeDown goes firing"
    assert "active 0.5s before the fault" in info.value.seen
    assert [v.ok for v in drill.verdicts] == [False]


def test_the_faults_own_firing_must_be_delivered_after_the_fault(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DrillRun, "_delivery_within_s", 0.5)  # not Alertmanager's ~19 s
    early = _delivered(received_at=1704067200.2)  # told before the fault: not its delivery
    prom = FakePrometheus(alert_script=[[NODE_DOWN]], notifications=[early])
    drill = _drill(prom)
    with pytest.raises(DrillFailed) as info:
        drill.expect_alert("NodeDown", within=5, set_off_after=1704067200.3)
    assert info.value.property == "NodeDown delivered to harness-critical"
    assert [v.ok for v in drill.verdicts] == [True, False]  # the firing itself was new


def test_the_fault_waits_for_the_alert_to_go_quiet() -> None:
    prom = FakePrometheus(alert_script=[[NODE_DOWN], [NODE_DOWN], []],
                          evaluated=EVALUATED_LATER)
    drill = _drill(prom)
    drill.await_quiet("NodeDown", within=5, labels={"node": "node1"})
    assert [(v.property, v.ok) for v in drill.verdicts] == [
        ('NodeDown{node="node1"} is quiet before the fault', True)]


def test_an_alert_that_stays_active_leaves_the_fault_unproven() -> None:
    prom = FakePrometheus(alert_script=[[NODE_DOWN]], evaluated=EVALUATED_LATER)
    drill = _drill(prom)
    with pytest.raises(Inconclusive) as info:
        drill.await_quiet("NodeDown", within=0.5)
    assert info.value.what == "NodeDown is quiet before the fault"
    assert "NodeDown" in info.value.seen


def test_quiet_is_read_only_once_prometheus_has_evaluated_after_the_ask() -> None:
    """Quiet as of an evaluation made before the ask could still be on older samples."""
    prom = FakePrometheus(alert_script=[[]], evaluated="2020-01-01T00:00:00Z")
    drill = _drill(prom)
    with pytest.raises(Inconclusive) as info:
        drill.await_quiet("NodeDown", within=0.5)
    assert "every alerting rule evaluated after" in info.value.seen
