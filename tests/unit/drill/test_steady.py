"""Steady state: what a drill refuses to start from, read off a fake stack's HTTP answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.drill import STEADY_PROPERTY, DrillRun, Inconclusive
from harness.drill.steady import (
    ProbeRounds,
    all_problems,
    ensure_steady,
    problems_after_next_evaluation,
)
from harness.errors import NotReady
from tests.fakes import FakeClock, alert_json, vllm_text
from tests.unit.drill.fakestack import FakeRuntime, FakeStack, Settings


@pytest.fixture
def fake() -> FakeStack:
    return FakeStack()


def problems(fake: FakeStack, tmp_path: Path, runtime: FakeRuntime | None = None) -> list[str]:
    return all_problems(fake.drill(tmp_path, runtime))


def test_an_idle_healthy_stack_has_no_problems(fake: FakeStack, tmp_path: Path) -> None:
    assert problems(fake, tmp_path) == []


def test_a_busy_node_is_named_with_what_it_is_doing(fake: FakeStack, tmp_path: Path) -> None:
    fake.node_metrics["node1"] = vllm_text(running=2, waiting=1, kv=0.3)
    assert problems(fake, tmp_path) == ["node node1: running=2.0 waiting=1.0 kv=0.3"]


def test_kv_at_the_baseline_counts_as_released(fake: FakeStack, tmp_path: Path) -> None:
    baseline = fake.topology.thresholds.kv_release_baseline
    fake.node_metrics["node2"] = vllm_text(kv=baseline)
    assert problems(fake, tmp_path) == []
    fake.node_metrics["node2"] = vllm_text(kv=baseline + 0.01)
    assert problems(fake, tmp_path) == [f"node node2: running=0.0 waiting=0.0 "
                                        f"kv={baseline + 0.01}"]


def test_a_node_whose_metrics_do_not_answer_is_a_problem(
        fake: FakeStack, tmp_path: Path) -> None:
    del fake.node_metrics["node2"]
    assert problems(fake, tmp_path) == ["node node2: metrics unreachable"]


def test_a_stopped_component_is_named(fake: FakeStack, tmp_path: Path) -> None:
    runtime = FakeRuntime(fake.topology, stopped={"gateway-b", "prometheus"})
    assert problems(fake, tmp_path, runtime) == ["gateway-b is not running",
                                                 "prometheus is not running"]


def test_gateway_views_and_front_door_backends_are_checked(
        fake: FakeStack, tmp_path: Path) -> None:
    fake.worker_health[("gateway-a", "node2")] = 0
    fake.circuit[("gateway-b", "node1")] = 2
    fake.backends["gateway-b"] = "DOWN"
    node1, node2 = fake.worker("node1"), fake.worker("node2")
    assert problems(fake, tmp_path) == [
        f"gateway-a sees {node2} unhealthy",
        f"gateway-b's circuit breaker towards {node1} is half-open",
        "front door backend gateway-b is DOWN",
    ]


def test_a_removed_canary_left_in_gateway_gauges_is_not_a_problem(
        fake: FakeStack, tmp_path: Path) -> None:
    """vllm-router keeps the last gauge of a removed worker: only nodes in rotation count."""
    canary = fake.topology.canary
    assert canary is not None
    fake.worker_health[("gateway-a", canary.name)] = 0
    assert problems(fake, tmp_path) == []


def test_toxics_disabled_proxies_and_alerts_are_named(fake: FakeStack, tmp_path: Path) -> None:
    fake.proxies["node1"]["toxics"] = [{"name": "latency_downstream", "type": "latency",
                                        "stream": "downstream", "toxicity": 1,
                                        "attributes": {"latency": 100}}]
    fake.proxies["node2"]["enabled"] = False
    fake.prometheus.alert_script = [[alert_json("NodeDown", "pending", node="node2")]]
    assert problems(fake, tmp_path) == [
        "toxic latency_downstream left on node1",
        "proxy node2 disabled",
        "alert NodeDown is pending {'alertname': 'NodeDown', 'node': 'node2'}",
    ]


def test_a_stack_never_steady_makes_the_drill_inconclusive_naming_what_is_off(
        fake: FakeStack, tmp_path: Path) -> None:
    fake.node_metrics["node1"] = vllm_text(running=1)
    drill = fake.drill(tmp_path)
    with pytest.raises(Inconclusive) as caught:
        ensure_steady(drill)
    assert caught.value.what == STEADY_PROPERTY
    assert "refuses to start" in caught.value.seen
    assert "node node1: running=1.0" in caught.value.seen
    assert [(v.property, v.ok) for v in drill.verdicts] == [(STEADY_PROPERTY, False)]
    assert drill.steady_at is None


def test_while_waiting_it_trickles_a_request_to_each_node_through_each_gateway(
        fake: FakeStack, tmp_path: Path) -> None:
    """Circuit breakers close only after successful requests, as under real traffic."""
    fake.circuit[("gateway-a", "node1")] = 1
    drill: DrillRun[Settings] = fake.drill(tmp_path)
    with pytest.raises(Inconclusive):
        ensure_steady(drill)
    posted = sorted((r.url.port, r.url.path) for r in fake.requests if r.method == "POST")
    gateways = [g.port for g in fake.topology.gateways]
    nodes = len(fake.topology.nodes)
    assert posted == sorted((port, "/v1/completions") for port in gateways for _ in range(nodes))


def test_after_the_probes_it_waits_for_an_evaluation_then_looks_again(
        fake: FakeStack, tmp_path: Path) -> None:
    """An alert pending from samples scraped before the probes (a breaker they closed)
    is seen once Prometheus has evaluated after them: the stack is not steady yet."""
    fake.prometheus.evaluated = "2100-01-01T00:00:00Z"  # already after any "now"
    fake.prometheus.alert_script = [[alert_json("CircuitOpen", "pending", gateway="gateway-b")]]
    assert problems_after_next_evaluation(fake.drill(tmp_path)) == [
        "alert CircuitOpen is pending {'alertname': 'CircuitOpen', 'gateway': 'gateway-b'}"]


def test_a_prometheus_that_never_evaluates_again_is_not_steady(
        fake: FakeStack, tmp_path: Path) -> None:
    fake.prometheus.evaluated = "2020-01-01T00:00:00Z"
    drill = fake.drill(tmp_path)
    drill.observer.clock = FakeClock()
    with pytest.raises(NotReady, match="every alerting rule evaluated after"):
        problems_after_next_evaluation(drill)


def test_after_the_probes_alerts_the_probes_move_are_not_held_against_the_stack(
        fake: FakeStack, tmp_path: Path) -> None:
    """A trickle of probes after a heavy drill reads as TPSDrop; judged before the probes."""
    fake.prometheus.evaluated = "2100-01-01T00:00:00Z"
    fake.prometheus.alert_script = [[alert_json("TPSDrop", "firing"),
                                     alert_json("TTFTHigh", "pending", source="client"),
                                     alert_json("CircuitOpen", "firing", gateway="gateway-a")]]
    assert problems_after_next_evaluation(fake.drill(tmp_path)) == [
        "alert CircuitOpen is firing {'alertname': 'CircuitOpen', 'gateway': 'gateway-a'}"]
    assert len(all_problems(fake.drill(tmp_path))) == 3, "before the probes, all count"


def test_steady_state_names_what_it_waited_on_once_each() -> None:
    rounds = ProbeRounds()
    rounds.saw(["alert TPSDrop is firing {}", "node node1: running=1.0"])
    rounds.saw(["alert TPSDrop is firing {}"])
    assert rounds.describe() == "; waited on: alert TPSDrop is firing {}; node node1: running=1.0"
    assert rounds.describe(shown=1) == "; waited on: alert TPSDrop is firing {} (and 1 more)"
    assert ProbeRounds().describe() == ""  # steady at once
