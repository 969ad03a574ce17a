from __future__ import annotations

import pytest
from obsfakes import FakeClock, ScriptedSource, fixture_text, vllm_text

from harness.errors import DrillFailed
from harness.observe import assert_kv_released


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
