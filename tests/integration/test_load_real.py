"""The load generator against the real stack: vLLM's own counters agree with the client.

Each request the client reports as finished must appear exactly once in
``vllm:request_success_total`` (summed over ``finished_reason``), read from the
nodes' ``/metrics`` with prometheus_client's parser.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.load import (
    ClientPolicy,
    LoadSpec,
    RequestResult,
    RetryPolicy,
    make_client,
    parse_lengths,
    run_load,
    summarize,
)
from harness.stack.stack import Stack
from harness.waits import Probe, Wait

N = 12
SUCCESS = "vllm:request_success_total"


def successes(node_url: str) -> float:
    """``vllm:request_success_total`` summed over every label set of one node."""
    text = httpx.get(f"{node_url}/metrics", timeout=5.0).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples if sample.name == SUCCESS)


def node_urls(stack: Stack) -> list[str]:
    return [stack.node_url(node.name) for node in stack.topology.nodes]


def total(urls: list[str]) -> float:
    return sum(successes(url) for url in urls)


def spec(stack: Stack, target: str, **overrides: object) -> LoadSpec:
    fields: dict[str, object] = {
        "target": target, "model": stack.topology.model.served_name, "max_requests": N,
        "duration_s": 120.0, "concurrency": 3,
        "prompt_len": parse_lengths("16", field_name="prompt_len"),
        "output_len": parse_lengths("24", field_name="output_len")}
    fields.update(overrides)
    return LoadSpec(**fields)  # type: ignore[arg-type]  # test overrides; LoadSpec checks them


def run(load: LoadSpec) -> tuple[RequestResult, ...]:
    async def main() -> tuple[RequestResult, ...]:
        async with make_client(load) as client:
            return await run_load(client, load)
    return asyncio.run(main())


def wait_for_count(urls: list[str], target: float) -> float:
    """vLLM updates its counters just after the last chunk: poll, with a deadline."""
    def probe() -> Probe[float]:
        now = total(urls)
        return Probe(done=now >= target, value=now, seen=f"{now}")
    Wait(within=15.0, interval=0.1).until(f"{SUCCESS} to reach {target}", probe)
    return total(urls)


@pytest.mark.stack
def test_direct_node_counts_exactly_n_requests(stack: Stack) -> None:
    node = stack.topology.nodes[0].name
    url = stack.node_url(node)
    before = successes(url)
    results = run(spec(stack, url))
    summary = summarize(results)
    assert summary.completed == N, summary.errors
    assert all(r.output_tokens == 24 and r.ttft_s is not None for r in results)
    after = wait_for_count([url], before + N)
    assert after - before == N


@pytest.mark.stack
def test_front_door_counts_n_plus_retries_over_both_nodes(stack: Stack) -> None:
    urls = node_urls(stack)
    before = total(urls)
    load = spec(stack, stack.front_door_url,
                policy=ClientPolicy(retries=RetryPolicy(max_attempts=3)))
    results = run(load)
    summary = summarize(results)
    assert summary.completed == N, summary.errors
    after = wait_for_count(urls, before + N)
    assert N <= after - before <= N + summary.retries
