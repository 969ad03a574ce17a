"""Canary analysis: when a canary is promoted or rolled back, and how probes are spread."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from harness.drill.canary import PROBE_TOKENS, ProbeStats, analyze, probe_nodes
from harness.drill.config import load_drills_config
from harness.drill.run import DrillRun

CFG = load_drills_config().hot_swap


def _stats(ttft: float | None, errors: int = 0, malformed: int = 0) -> ProbeStats:
    return ProbeStats(ttft, tokens_per_s=100.0, errors=errors, malformed=malformed, probes=8)


def test_millisecond_jitter_on_a_tiny_model_is_not_a_regression() -> None:
    decision = analyze(CFG, _stats(0.010), _stats(0.031))
    assert decision.promote, decision.reason


def test_a_canary_slower_by_ratio_and_by_seconds_is_rolled_back() -> None:
    decision = analyze(CFG, _stats(0.010), _stats(1.6))
    assert not decision.promote
    assert "TTFT p50 1.600s" in decision.reason


def test_a_large_absolute_slowdown_under_the_ratio_bound_is_promoted() -> None:
    decision = analyze(CFG, _stats(1.0), _stats(1.0 * CFG.max_ttft_ratio * 0.9))
    assert decision.promote, decision.reason


@pytest.mark.parametrize("canary", [_stats(None, errors=8), _stats(0.01, malformed=2)])
def test_errors_or_malformed_output_roll_back(canary: ProbeStats) -> None:
    decision = analyze(CFG, _stats(0.010), canary)
    assert not decision.promote
    assert "errors" in decision.reason


def _stream_body(tokens: int) -> bytes:
    chunk = json.dumps({"choices": [{"text": "x"}]})
    usage = json.dumps({"choices": [], "usage": {"completion_tokens": tokens}})
    return f"data: {chunk}\n\ndata: {usage}\n\ndata: [DONE]\n\n".encode()


def _drill_over(handler: Any) -> DrillRun:
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return cast(DrillRun, SimpleNamespace(http=client, stack=SimpleNamespace(model="m")))


def test_probes_alternate_between_nodes_in_both_orders() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(200, content=_stream_body(PROBE_TOKENS))

    stable, canary = probe_nodes(_drill_over(handler), ["http://a", "http://b"], 4)
    assert hosts == ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert (stable.probes, canary.probes) == (4, 4)
    assert stable.malformed == canary.malformed == 0


def test_probe_failures_and_short_outputs_are_counted_per_node() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "b":
            return httpx.Response(500, text="broken")
        return httpx.Response(200, content=_stream_body(PROBE_TOKENS - 1))

    stable, canary = probe_nodes(_drill_over(handler), ["http://a", "http://b"], 3)
    assert (stable.errors, stable.malformed) == (0, 3)
    assert (canary.errors, canary.ttft_p50_s) == (3, None)
