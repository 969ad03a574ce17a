from __future__ import annotations

import math

import httpx
import pytest

from harness.clients.metrics import HttpMetricsSource, histogram_buckets, quantile_bound
from harness.errors import Unreachable
from harness.observe import NodeState, parse_metrics, scrape
from tests.fakes import fixture_text


def test_real_vllm_metrics_busy_node() -> None:
    snap = parse_metrics(fixture_text("vllm_busy.txt"))
    state = NodeState.from_snapshot("node1", snap)
    assert (state.running, state.waiting) == (8.0, 8.0)
    assert 0.5 < state.kv_usage < 0.6
    assert state.generation_tokens > 0
    assert snap.total("vllm:request_success_total", finished_reason="abort") == 0.0


def test_real_vllm_metrics_idle_node() -> None:
    state = NodeState.from_snapshot("node1", parse_metrics(fixture_text("vllm_idle.txt")))
    assert (state.running, state.waiting, state.kv_usage) == (0.0, 0.0, 0.0)


def test_missing_engine_metrics_are_reported() -> None:
    snap = parse_metrics("# TYPE up gauge\nup 1\n", url="http://n/metrics")
    with pytest.raises(Unreachable, match="absent: vllm:num_requests_running"):
        NodeState.from_snapshot("node1", snap)


def test_real_haproxy_exporter_server_states() -> None:
    snap = parse_metrics(fixture_text("haproxy_one_down.txt"))
    down = [s.labels["server"] for s in snap.get("haproxy_server_status", state="DOWN")
            if s.value == 1]
    assert down == ["gateway-b"]
    assert snap.total("haproxy_backend_active_servers", proxy="gateways") == 1


def test_absent_metric_total_is_none() -> None:
    assert parse_metrics("").total("nope") is None


def test_scrape_through_injected_client() -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, text=fixture_text("gateway_one_down.txt")))
    source = HttpMetricsSource("http://gw/metrics", httpx.Client(transport=transport))
    snap = source.scrape()
    assert snap.url == "http://gw/metrics" and snap.taken_at > 0
    assert snap.total("vllm_router_worker_health", worker="http://127.0.0.1:18102") == 0


@pytest.mark.parametrize("response", [httpx.Response(503, text="down"),
                                      httpx.Response(200, text="not { exposition")])
def test_scrape_bad_answers_are_unreachable(response: httpx.Response) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: response))
    with pytest.raises(Unreachable):
        scrape(client, "http://n/metrics")


def test_scrape_connection_refused_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(Unreachable) as info:
        scrape(httpx.Client(transport=httpx.MockTransport(refuse)), "http://n:1/metrics")
    assert info.value.url == "http://n:1/metrics"


TTFT = "vllm:time_to_first_token_seconds"


def test_histogram_buckets_of_a_real_vllm_page_are_cumulative_by_bound() -> None:
    buckets = histogram_buckets(parse_metrics(fixture_text("vllm_busy.txt")), TTFT)
    assert buckets[0.005] == 22.0 and buckets[0.04] == 37.0
    assert buckets[math.inf] == 37.0
    assert list(buckets.values()) == sorted(buckets.values())


def test_the_quantile_bound_covers_only_what_was_counted_between_readings() -> None:
    before = {0.1: 10.0, 0.75: 10.0, 1.0: 10.0, math.inf: 10.0}
    after = {0.1: 28.0, 0.75: 29.0, 1.0: 30.0, math.inf: 30.0}  # 20 new: 18 fast, 2 slow
    assert quantile_bound(before, after, 0.9) == (0.1, 20.0)
    assert quantile_bound(before, after, 0.95) == (0.75, 20.0)
    assert quantile_bound(before, after, 1.0) == (1.0, 20.0)


def test_a_histogram_that_counted_nothing_has_no_quantile() -> None:
    same = {0.1: 5.0, math.inf: 5.0}
    bound, counted = quantile_bound(same, same, 0.95)
    assert math.isnan(bound) and counted == 0.0
