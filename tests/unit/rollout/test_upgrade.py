"""The rolling upgrade takes each node out of every gateway, waits for what it holds,
stops it, starts it on the new revision, warms it up and puts it back, in that order,
with its NodeDown silenced in Alertmanager through its turn and the silence expired only
once Alertmanager holds no such alert; the policy's safety steps can be turned off; a
failed warm-up keeps the node out (and pages)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import parse_qs

import httpx
import pytest

from harness.clients.alertmanager import AlertmanagerClient
from harness.errors import NotReady, StackError
from harness.rollout.gateways import Gateways
from harness.rollout.upgrade import RollingUpgrade, UpgradePlan
from harness.topology import UpgradePolicy
from tests.fakes import FakeClock

GATEWAYS = ("http://gw-a.test", "http://gw-b.test")
ALERTMANAGER = "http://am.test"
NODES = ("node1", "node2")


def metrics_page(running: int) -> str:
    return (f"vllm:num_requests_running{{engine=\"0\"}} {running}\n"
            "vllm:num_requests_waiting{engine=\"0\"} 0\n"
            "vllm:kv_cache_usage_perc{engine=\"0\"} 0.1\n"
            "vllm:generation_tokens_total{engine=\"0\"} 10\n")


@dataclass
class FakeFleet:
    """Nodes and gateways behind one MockTransport; every step is recorded in order."""

    held: dict[str, list[int]] = field(default_factory=lambda: {n: [1, 1, 0] for n in NODES})
    warmup_status: int = 200
    workers: dict[str, set[str]] = field(default_factory=lambda: {
        gw: {f"http://{n}.proxied" for n in NODES} for gw in GATEWAYS})
    steps: list[str] = field(default_factory=list)
    revisions: dict[str, str] = field(default_factory=dict)
    held_alerts: int = 0                # polls of Alertmanager that still find the alert
    silence_bodies: list[dict[str, object]] = field(default_factory=list)

    # -- the Fleet protocol -----------------------------------------------------------
    def worker_url(self, node: str) -> str:
        return f"http://{node}.proxied"

    def node_url(self, node: str) -> str:
        return f"http://{node}.direct"

    def stop(self, node: str, grace_s: float) -> None:
        self.steps.append(f"stop {node} grace {grace_s:g}")

    def start_on(self, node: str, revision: str) -> None:
        self.revisions[node] = revision
        self.steps.append(f"start {node} on {revision}")

    def wait_ready(self, node: str, within: float) -> float:
        self.steps.append(f"ready {node}")
        return 1.0

    # -- what the procedure reaches over HTTP -----------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        base, path = f"{request.url.scheme}://{request.url.host}", request.url.path
        if base in GATEWAYS:
            return self._gateway(base, path, request)
        if base == ALERTMANAGER:
            return self._alertmanager(path, request)
        node = request.url.host.split(".")[0]
        if path == "/metrics":
            sequence = self.held[node]
            return httpx.Response(200, text=metrics_page(sequence.pop(0) if len(sequence) > 1
                                                         else sequence[0]))
        self.steps.append(f"warm {node}")
        return httpx.Response(self.warmup_status, json={"choices": [{"text": "ok"}]})

    def _gateway(self, gateway: str, path: str, request: httpx.Request) -> httpx.Response:
        if path == "/workers":
            return httpx.Response(200, json={"workers": [
                {"url": url} for url in sorted(self.workers[gateway])]})
        worker = parse_qs(request.url.query.decode())["url"][0]
        node = httpx.URL(worker).host.split(".")[0]
        if path == "/remove_worker":
            self.workers[gateway].discard(worker)
            self.steps.append(f"remove {node} from {gateway}")
        else:
            self.workers[gateway].add(worker)
            self.steps.append(f"add {node} to {gateway}")
        return httpx.Response(200, text="ok")


    def _alertmanager(self, path: str, request: httpx.Request) -> httpx.Response:
        if path == "/api/v2/silences":
            body = json.loads(request.content)
            self.silence_bodies.append(body)
            names = [m["value"] for m in body["matchers"] if m["name"] == "alertname"]
            nodes = [m["value"] for m in body["matchers"] if m["name"] == "node"]
            self.steps.append(f"silence {names[0]} for {nodes[0]}")
            return httpx.Response(200, json={"silenceID": f"s{len(self.silence_bodies)}"})
        if path == "/api/v2/alerts":
            filters = parse_qs(request.url.query.decode())["filter"]
            self.steps.append(f"alerts {' '.join(sorted(filters))}")
            if self.held_alerts <= 0:
                return httpx.Response(200, json=[])
            self.held_alerts -= 1
            return httpx.Response(200, json=[{
                "labels": {"alertname": "NodeDown", "node": "node1"},
                "status": {"state": "suppressed", "silencedBy": ["s1"]}}])
        self.steps.append(f"expire {path.rsplit('/', 1)[-1]}")
        return httpx.Response(200)


def procedure(fleet: FakeFleet, *, with_alertmanager: bool = True) -> RollingUpgrade:
    http, clock = httpx.Client(transport=httpx.MockTransport(fleet.handle)), FakeClock()
    alertmanager = AlertmanagerClient(ALERTMANAGER, http) if with_alertmanager else None
    return RollingUpgrade(fleet, Gateways(GATEWAYS, http, clock), http, clock,
                          alertmanager=alertmanager)


POLICY = UpgradePolicy(drain_within_s=5.0, warmup_requests=2)


def plan(policy: UpgradePolicy = POLICY) -> UpgradePlan:
    return UpgradePlan("canary", "tiny", policy)


def test_each_node_is_drained_finished_stopped_started_warmed_and_put_back_in_turn() -> None:
    fleet = FakeFleet()

    done = procedure(fleet).run(plan(), NODES)

    node1 = ["silence NodeDown for node1",
             "remove node1 from http://gw-a.test", "remove node1 from http://gw-b.test",
             "stop node1 grace 30", "start node1 on canary", "ready node1",
             "warm node1", "warm node1",
             "add node1 to http://gw-a.test", "add node1 to http://gw-b.test",
             'alerts alertname="NodeDown" node="node1"', "expire s1"]
    assert fleet.steps == node1 + [step.replace("node1", "node2").replace("s1", "s2")
                                   for step in node1]
    assert [(u.node, u.revision, u.in_flight_at_drain, u.silences) for u in done] == [
        ("node1", "canary", 1, ("s1",)), ("node2", "canary", 1, ("s2",))]
    assert all(u.idle_at is not None and u.drained_at is not None for u in done)


def test_a_node_still_busy_past_the_drain_bound_is_not_stopped() -> None:
    fleet = FakeFleet(held={"node1": [2], "node2": [0]})

    with pytest.raises(NotReady, match="node1 to finish what it holds"):
        procedure(fleet).upgrade(plan(replace(POLICY, drain_within_s=0.5)), "node1")

    assert not any(step.startswith("stop") for step in fleet.steps)


def test_without_its_safety_steps_a_node_is_killed_in_place() -> None:
    fleet = FakeFleet()

    done = procedure(fleet).upgrade(plan(replace(POLICY, drain=False,
                                                 finish_in_flight=False, stop_grace_s=0)),
                                    "node1")

    assert fleet.steps[:2] == ["silence NodeDown for node1", "stop node1 grace 0"]
    assert (done.drained_at, done.idle_at) == (None, None)


def test_a_node_that_fails_its_warm_up_stays_out_of_the_gateways() -> None:
    fleet = FakeFleet(warmup_status=500)

    with pytest.raises(StackError, match="node1 on canary failed its warm-up: HTTP 500"):
        procedure(fleet).upgrade(plan(), "node1")

    assert all("http://node1.proxied" not in workers for workers in fleet.workers.values())
    assert fleet.steps[-1] == "expire s1"  # a node that did not come back pages


def test_the_silence_is_expired_only_once_alertmanager_holds_the_alert_no_more() -> None:
    fleet = FakeFleet(held_alerts=3)

    done = procedure(fleet).upgrade(plan(), "node1")

    polls = [i for i, step in enumerate(fleet.steps) if step.startswith("alerts")]
    assert len(polls) == 4 and fleet.steps[polls[-1] + 1:] == ["expire s1"]
    assert done.unsilenced_at is not None and done.unsilenced_at >= done.rejoined_at


def test_an_alert_that_never_clears_fails_the_turn_and_still_expires_the_silence() -> None:
    fleet = FakeFleet(held_alerts=10_000)

    with pytest.raises(NotReady, match="Alertmanager to hold no NodeDown for node1"):
        procedure(fleet).upgrade(plan(replace(POLICY, alerts_clear_within_s=3)), "node1")

    assert fleet.steps[-1] == "expire s1"


def test_the_silence_matches_the_node_and_ends_by_itself_after_the_worst_case() -> None:
    fleet = FakeFleet()

    procedure(fleet).upgrade(plan(), "node1")

    (body,) = fleet.silence_bodies
    assert body["matchers"] == [
        {"name": "alertname", "value": "NodeDown", "isRegex": False, "isEqual": True},
        {"name": "node", "value": "node1", "isRegex": False, "isEqual": True}]
    starts = datetime.fromisoformat(str(body["startsAt"]))
    ends = datetime.fromisoformat(str(body["endsAt"]))
    assert (ends - starts).total_seconds() == pytest.approx(POLICY.worst_case_s())


def test_a_policy_that_silences_nothing_needs_no_alertmanager() -> None:
    fleet = FakeFleet()

    done = procedure(fleet, with_alertmanager=False).upgrade(
        plan(replace(POLICY, silence=())), "node1")

    assert done.silences == () and not any("silence" in step for step in fleet.steps)


def test_a_policy_that_silences_without_an_alertmanager_is_refused_before_any_step() -> None:
    fleet = FakeFleet()

    with pytest.raises(StackError, match="silences NodeDown but the procedure was given no"):
        procedure(fleet, with_alertmanager=False).upgrade(plan(), "node1")

    assert fleet.steps == []
