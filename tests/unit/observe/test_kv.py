from __future__ import annotations

import pytest

from harness.clients.metrics import MetricsSnapshot
from harness.errors import DrillFailed, Unreachable
from harness.observe import KVPeakSampler, assert_kv_released
from tests.fakes import FakeClock, ScriptedSource, fixture_text, vllm_text


def test_released_after_the_storm(clock: FakeClock) -> None:
    nodes = {"node1": ScriptedSource([fixture_text("vllm_busy.txt"), vllm_text(gen=500),
                                      vllm_text(gen=500)]),
             "node2": ScriptedSource([vllm_text(kv=0.01, gen=9)])}
    result = assert_kv_released(nodes, 0.05, within=5, clock=clock)
    assert [s.node for s in result.nodes] == ["node1", "node2"]
    assert result.elapsed_s > 0


def test_kv_held_without_requests_fails_naming_the_node(clock: FakeClock) -> None:
    nodes = {"node1": ScriptedSource([vllm_text(kv=0.4, gen=10)])}
    with pytest.raises(DrillFailed) as info:
        assert_kv_released(nodes, 0.05, within=2, clock=clock)
    assert "node1: running=0 waiting=0 kv=0.400" in str(info.value)


def test_generation_still_moving_fails(clock: FakeClock) -> None:
    texts = [vllm_text(gen=g) for g in range(0, 1000, 10)]
    with pytest.raises(DrillFailed, match="still generating"):
        assert_kv_released({"node1": ScriptedSource(texts)}, 0.05, within=2, clock=clock)


def test_per_node_baseline(clock: FakeClock) -> None:
    nodes = {"node1": ScriptedSource([vllm_text(kv=0.2)]),
             "node2": ScriptedSource([vllm_text(kv=0.0)])}
    assert_kv_released(nodes, {"node1": 0.25, "node2": 0.0}, within=1, clock=clock)
    with pytest.raises(DrillFailed):
        assert_kv_released(nodes, {"node1": 0.1, "node2": 0.0}, within=1, clock=clock)


def test_release_is_timed_from_the_end_of_the_fault(clock: FakeClock) -> None:
    storm_ended = clock.wall() - 3.0
    nodes = {"node1": ScriptedSource([vllm_text(running=2, gen=5), vllm_text(gen=9)])}
    result = assert_kv_released(nodes, 0.05, within=5, interval=0.1, since=storm_ended,
                                clock=clock)
    assert result.elapsed_s == pytest.approx(3.0 + 0.1)  # one busy poll, then released


class Unanswering:
    """A node whose /metrics does not answer."""

    def scrape(self) -> MetricsSnapshot:
        raise Unreachable("fake://node/metrics", "a /metrics page", "timed out")


def test_peak_keeps_each_nodes_highest_kv_usage() -> None:
    sampler = KVPeakSampler({"node1": ScriptedSource([vllm_text(kv=0.1), vllm_text(kv=0.6),
                                                      vllm_text(kv=0.2)]),
                             "node2": ScriptedSource([vllm_text(kv=0.3)])})
    for _ in range(3):
        sampler.sample_once()
    peak = sampler.peak()
    assert peak.by_node == {"node1": 0.6, "node2": 0.3}
    assert peak.highest == 0.6
    assert (peak.samples, peak.unreadable) == (3, 0)
    assert "node1 0.60" in peak.describe()


def test_an_unreadable_scrape_is_counted_never_read_as_zero() -> None:
    sampler = KVPeakSampler({"node1": Unanswering()})
    sampler.sample_once()
    with pytest.raises(Unreachable, match="timed out"):
        sampler.peak()


def test_the_sampler_reads_at_least_once_while_the_block_runs() -> None:
    with KVPeakSampler({"node1": ScriptedSource([vllm_text(kv=0.4)])}, interval=0.01) as s:
        pass
    assert s.peak().by_node == {"node1": 0.4}
