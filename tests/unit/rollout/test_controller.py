"""The rollout controller on httpx.MockTransport with a fake clock: it promotes a canary
that holds up, rolls back one that is slow (TTFT), slow to generate (TPS), failing or
wrong, proves the rollback on the gateways' worker lists, and exports its decisions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.clients.prometheus import PrometheusClient
from harness.rollout.analysis import compare_outputs
from harness.rollout.controller import CanarySpec, Controller, State
from harness.rollout.gateways import Gateways
from harness.rollout.signals import Prober, ProbeResult, PrometheusReadings, Target
from harness.topology import RolloutPolicy
from tests.fakes import FakeClock

POLICY = RolloutPolicy(interval_s=2.0, analysis_steps=3, failed_checks=2, output_prompts=3,
                       output_tokens=8)
CANARY = "http://canary.test"
STABLE = "http://node1.test"
GATEWAYS = ("http://gw-a.test", "http://gw-b.test")
PROMETHEUS = "http://prom.test"


@dataclass
class FakeStack:
    """Nodes, gateways and Prometheus behind one MockTransport."""

    clock: FakeClock
    canary_delay_s: float = 0.0          # before the first token (TTFT)
    canary_per_token_s: float = 0.0      # between tokens (TPS)
    canary_status: int = 200
    canary_words: str = "same"
    canary_chunk: int = 1                # tokens per streamed chunk
    canary_id_offset: int = 0            # token ids shifted (other vocabulary), same text
    stubborn_gateway: str = ""           # accepts remove_worker, keeps routing
    prometheus_ttft: dict[str, float] = field(default_factory=dict)
    workers: dict[str, set[str]] = field(default_factory=lambda: {
        gw: {STABLE, CANARY} for gw in GATEWAYS})
    removals: list[str] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.host}"
        if base in GATEWAYS:
            return self._gateway(base, request)
        if base == PROMETHEUS:
            return self._prometheus(request)
        return self._node(base, request)

    def _node(self, base: str, request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["prompt"]
        if base == CANARY:
            if self.canary_status != 200:
                return httpx.Response(self.canary_status, json={"error": {"message": "broken"}})
            self.clock.t += self.canary_delay_s
            return httpx.Response(200, content=self._sse(
                prompt, self.canary_words, self.canary_per_token_s, self.canary_chunk,
                self.canary_id_offset))
        return httpx.Response(200, content=self._sse(prompt, "same", 0.0, 1, 0))

    def _sse(self, prompt: str, words: str, per_token_s: float, chunk: int,
             id_offset: int) -> Iterator[bytes]:
        tokens = [f" {words}-{len(prompt)}-{i}" for i in range(POLICY.output_tokens)]
        for start in range(0, len(tokens), chunk):
            if start:
                self.clock.t += per_token_s * chunk
            self.clock.t += 0.005
            ids = [id_offset + len(words) * 10 + i for i in range(start, start + chunk)]
            choice = {"text": "".join(tokens[start:start + chunk]), "token_ids": ids}
            yield f'data: {json.dumps({"choices": [choice]})}\n\n'.encode()
        usage = {"choices": [], "usage": {"completion_tokens": len(tokens)}}
        yield f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()

    def _gateway(self, gw: str, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/remove_worker":
            url = parse_qs(request.url.query.decode())["url"][0]
            self.removals.append(gw)
            if gw != self.stubborn_gateway:
                self.workers[gw].discard(url)
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(200, json={"workers": [{"url": u} for u in self.workers[gw]]})

    def _prometheus(self, request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        result = []
        for node, value in self.prometheus_ttft.items():
            if "time_to_first_token" in query and f'node=~"{node}"' in query:
                result = [{"metric": {}, "value": [self.clock.t, str(value)]}]
        return httpx.Response(200, json={"status": "success",
                                         "data": {"resultType": "vector", "result": result}})


@dataclass
class Rig:
    stack: FakeStack
    controller: Controller
    registry: CollectorRegistry
    clock: FakeClock

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.controller.step()
            self.clock.sleep(POLICY.interval_s)

    def metric(self, name: str, **labels: str) -> float | None:
        text = generate_latest(self.registry).decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v
                                               for k, v in labels.items()):
                    return sample.value
        return None


def rig(**behaviour: object) -> Rig:
    clock = FakeClock()
    stack = FakeStack(clock, **behaviour)  # type: ignore[arg-type]  # behaviour keys are FakeStack's fields
    http = httpx.Client(transport=httpx.MockTransport(stack.handle))
    registry = CollectorRegistry()
    controller = Controller(
        POLICY, Prober(http, "tiny", POLICY, clock.now),
        PrometheusReadings(PrometheusClient(PROMETHEUS, http), POLICY.window_s),
        Gateways(GATEWAYS, http, clock, verify_within_s=2.0), clock, registry=registry)
    controller.register(CanarySpec("canary", CANARY, (Target("node1", STABLE),)))
    return Rig(stack, controller, registry, clock)


def test_a_canary_that_answers_like_stable_is_promoted_and_stays_in_rotation() -> None:
    r = rig()
    r.run(POLICY.analysis_steps)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.PROMOTED, status
    assert all(CANARY in workers for workers in r.stack.workers.values())
    assert r.stack.removals == []
    assert r.metric("llmdrill_rollout_decisions_total", canary="canary", decision="promoted") == 1
    assert r.metric("llmdrill_rollout_canary_in_rotation", canary="canary") == 1


def test_a_slow_canary_is_rolled_back_on_ttft_and_leaves_every_gateway() -> None:
    r = rig(canary_delay_s=1.5)
    r.run(1)
    status = r.controller.status("canary")
    assert status is not None
    assert status.state is State.ANALYSING
    r.run(1)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ROLLED_BACK
    assert "TTFT" in status.reason
    assert status.removed_from == GATEWAYS
    assert not any(CANARY in workers for workers in r.stack.workers.values())
    assert status.decided_at is not None and status.decided_at > status.started_at
    assert r.metric("llmdrill_rollout_decisions_total", canary="canary",
                    decision="rolled_back") == 1
    assert r.metric("llmdrill_rollout_canary_in_rotation", canary="canary") == 0


def test_tokens_per_second_decides_on_its_own() -> None:
    r = rig(canary_per_token_s=0.2)
    r.run(2)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ROLLED_BACK
    assert "tokens/s" in status.reason and "TTFT" not in status.reason, status.reason


def test_a_failing_canary_is_rolled_back_on_its_error_ratio() -> None:
    r = rig(canary_status=500)
    r.run(2)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ROLLED_BACK
    assert "error ratio 1.00" in status.reason


def test_a_canary_from_other_weights_is_rolled_back_on_the_output_check() -> None:
    r = rig(canary_words="other")
    r.run(2)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ROLLED_BACK
    assert "output differs from stable on 3 of 3" in status.reason
    assert r.metric("llmdrill_rollout_analysis", canary="canary",
                    signal="output_match_ratio") == 0


def test_the_same_answer_streamed_in_other_chunks_matches() -> None:
    r = rig(canary_chunk=2)
    r.run(POLICY.analysis_steps)
    status = r.controller.status("canary")
    assert status is not None
    assert status.state is State.PROMOTED, status.reason


def test_the_same_text_from_other_token_ids_is_a_different_answer() -> None:
    r = rig(canary_id_offset=1000)
    r.run(2)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ROLLED_BACK
    assert "output differs" in status.reason


def test_vllm_ttft_in_prometheus_decides_when_the_probes_look_fine() -> None:
    r = rig(prometheus_ttft={"canary": 2.0, "node1": 0.02})
    r.run(2)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ROLLED_BACK
    assert "TTFT p50 2.000s" in status.reason


def test_a_rollback_counts_only_when_the_gateways_workers_prove_it() -> None:
    r = rig(canary_status=500, stubborn_gateway=GATEWAYS[1])
    r.run(2)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.ANALYSING
    assert "rollback NOT verified" in status.reason and GATEWAYS[1] in status.reason
    assert r.metric("llmdrill_rollout_canary_in_rotation", canary="canary") == 1
    assert r.metric("llmdrill_rollout_decisions_total", canary="canary",
                    decision="rolled_back") == 0


def test_a_failing_step_then_passing_ones_do_not_roll_back() -> None:
    r = rig(canary_status=500)
    r.run(1)
    r.stack.canary_status = 200
    r.run(POLICY.analysis_steps)
    status = r.controller.status("canary")
    assert status is not None and status.state is State.PROMOTED
    assert r.metric("llmdrill_rollout_analysis_steps_total", canary="canary",
                    result="failed") == 1


@pytest.mark.parametrize(("words", "outcome"), [("same", "match"), ("other", "mismatch")])
def test_shadow_requests_are_answered_by_stable_and_compared_on_the_canary(
        words: str, outcome: str) -> None:
    r = rig(canary_words=words)
    served = r.controller.answer("canary", "hello there")
    assert served.ok and "".join(served.tokens).startswith(" same-")
    assert r.controller.mirror("canary", served) == outcome
    assert r.metric("llmdrill_rollout_shadow_requests_total", canary="canary",
                    outcome=outcome) == 1


def test_an_output_mismatch_is_reported_in_counts_never_text() -> None:
    canary = ProbeResult("a secret prompt", 0.1, 10.0, ("Hello", " there"), token_ids=(1, 2, 3))
    stable = ProbeResult("a secret prompt", 0.1, 10.0, ("Hello", " world"), token_ids=(1, 2, 4, 5))
    check = compare_outputs([canary], [stable])
    assert check.first_mismatch == ("seeded prompt #0: answers part at token 2 "
                                    "(canary 3, stable 4 tokens)")
    assert "secret" not in check.first_mismatch and "world" not in check.first_mismatch
