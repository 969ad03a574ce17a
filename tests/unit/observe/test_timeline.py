from __future__ import annotations

import json
import threading

from harness.clients.metrics import MetricsSnapshot
from harness.errors import Unreachable
from harness.observe import Timeline, TimelineTargets
from tests.fakes import ScriptedSource, fixture_text, vllm_text


class DeadSource:
    def scrape(self) -> MetricsSnapshot:
        raise Unreachable("http://node2/metrics", "a /metrics page", "refused")


def _targets() -> TimelineTargets:
    return TimelineTargets(
        nodes={"node1": ScriptedSource([fixture_text("vllm_busy.txt")]), "node2": DeadSource()},
        gateways={"gateway-a": ScriptedSource([fixture_text("gateway_one_down.txt")])},
        frontdoor=ScriptedSource([fixture_text("haproxy_one_down.txt")]),
        loadgen=ScriptedSource([fixture_text("loadgen.txt")]))


def test_one_sample_holds_every_layer() -> None:
    sample = Timeline(_targets(), wall=lambda: 123.0).sample_once()
    node1, node2 = sample.nodes
    assert (node1.up, node1.running, node1.waiting) == (True, 8.0, 8.0)
    assert (node2.up, node2.running) == (False, None)
    assert sample.unreachable == ("node2",)
    assert [(w.worker[-5:], w.healthy, w.circuit) for w in sample.workers] == [
        ("18101", True, "closed"), ("18102", False, "open")]
    assert {(b.server, b.state) for b in sample.frontdoor} == {("gateway-a", "UP"),
                                                              ("gateway-b", "DOWN")}
    assert sample.client is not None
    assert sample.client.errors == (("5xx", 3.0), ("timeout", 1.0))
    assert sample.client.ttft_mean_s is None


def test_client_ttft_mean_is_per_interval() -> None:
    loadgen = ScriptedSource([fixture_text("loadgen.txt"), fixture_text("loadgen.txt")
                              .replace("_count 96.0", "_count 100.0")
                              .replace("_sum 9.6", "_sum 11.6")])
    timeline = Timeline(TimelineTargets(loadgen=loadgen))
    timeline.sample_once()
    second = timeline.sample_once()
    assert second.client is not None and second.client.ttft_mean_s == 0.5


def test_bounded_and_serialisable() -> None:
    timeline = Timeline(_targets(), max_samples=3)
    for _ in range(5):
        timeline.sample_once()
    assert len(timeline.samples()) == 3 and timeline.dropped == 2
    decoded = json.loads(timeline.to_json())
    assert decoded[0]["nodes"][0]["node"] == "node1"


def test_background_thread_samples_until_stopped() -> None:
    sampled = threading.Event()

    class Signalling(ScriptedSource):
        def scrape(self) -> MetricsSnapshot:
            sampled.set()
            return super().scrape()

    timeline = Timeline(TimelineTargets(nodes={"n": Signalling([vllm_text()])}),
                        interval=0.01).start()
    assert sampled.wait(5)
    samples = timeline.stop()
    assert samples and not timeline._thread.is_alive()
    assert len(timeline.samples()) == len(samples)
