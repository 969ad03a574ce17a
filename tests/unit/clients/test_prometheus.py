from __future__ import annotations

import math

import httpx
import pytest

from harness.clients.prometheus import parse_time
from harness.errors import QueryError, Unreachable
from harness.observe import PrometheusClient


def _client(handler: httpx.MockTransport) -> PrometheusClient:
    return PrometheusClient("http://prom:9090/", httpx.Client(transport=handler))


def test_query_returns_typed_samples_and_sends_the_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": {
            "resultType": "vector", "result": [
                {"metric": {"__name__": "up", "node": "node1"}, "value": [1700000000.5, "1"]},
                {"metric": {"node": "node2"}, "value": [1700000000.5, "NaN"]}]}})

    samples = _client(httpx.MockTransport(handler)).query('up{job="vllm"}', at=12.5)
    assert samples[0].labels == {"__name__": "up", "node": "node1"}
    assert samples[0].value == 1.0 and samples[0].name == "up"
    assert math.isnan(samples[1].value)
    assert seen[0].url.path == "/api/v1/query"
    assert seen[0].url.params["query"] == 'up{job="vllm"}'
    assert seen[0].url.params["time"] == "12.5"


def test_scalar_result_is_one_unlabelled_sample() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={
        "status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}))
    (sample,) = _client(transport).query("1 + 2")
    assert sample.labels == {} and sample.value == 3.0


def test_query_range_returns_series_points() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={
        "status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"alertname": "NodeDown"}, "values": [[10, "1"], [11, "1"]]}]}}))
    (series,) = _client(transport).query_range("ALERTS", 10, 11, 1)
    assert series.labels == {"alertname": "NodeDown"}
    assert series.points == ((10.0, 1.0), (11.0, 1.0))


def test_promql_error_becomes_query_error_with_prometheus_message() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(400, json={
        "status": "error", "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:6: parse error: unexpected "}"'}))
    with pytest.raises(QueryError) as info:
        _client(transport).query("up{}}")
    assert info.value.query == "up{}}"
    assert "bad_data" in info.value.message and "parse error" in info.value.message


def test_non_json_answer_is_a_query_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(502, text="<html>bad gateway"))
    with pytest.raises(QueryError, match="HTTP 502"):
        _client(transport).query("up")


def test_unreachable_prometheus_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unreachable) as info:
        _client(httpx.MockTransport(refuse)).query("up")
    assert info.value.url == "http://prom:9090/api/v1/query"
    assert "ConnectError" in str(info.value)


def test_alerts_and_rules_are_parsed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/alerts":
            return httpx.Response(200, json={"status": "success", "data": {"alerts": [
                {"labels": {"alertname": "NodeDown", "node": "node1"}, "annotations": {},
                 "state": "pending", "activeAt": "2024-01-01T00:00:00Z", "value": "0e+00"}]}})
        return httpx.Response(200, json={"status": "success", "data": {"groups": [
            {"name": "g", "rules": [
                {"name": "NodeDown", "type": "alerting", "query": "up == 0", "duration": 2,
                 "health": "ok", "lastEvaluation": "2024-01-01T00:00:01.5Z"},
                {"name": "job:up:sum", "type": "recording", "query": "sum(up)",
                 "health": "ok"}]}]}})

    client = _client(httpx.MockTransport(handler))
    (alert,) = client.alerts()
    assert (alert.name, alert.state, alert.active_at) == ("NodeDown", "pending", 1704067200.0)
    assert alert.matches({"node": "node1"}) and not alert.matches({"node": "node2"})
    assert client.alert_names() == frozenset({"NodeDown"})
    assert client.rules()[0].duration_s == 2.0
    assert [r.last_evaluation for r in client.rules()] == [1704067201.5, None]


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-01T00:00:00Z", 1704067200.0),
    ("2024-01-01T00:00:00.250000000Z", 1704067200.25),
    ("2024-01-01T02:00:00.5+02:00", 1704067200.5),
    ("0001-01-01T00:00:00Z", None),
    ("garbage", None),
])
def test_parse_time(text: str, expected: float | None) -> None:
    assert parse_time(text) == expected


def test_scraped_instances_lists_active_targets_of_one_job() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "data": {
            "activeTargets": [
                {"labels": {"job": "vllm", "instance": "127.0.0.1:18001"}, "health": "up"},
                {"labels": {"job": "vllm", "instance": "127.0.0.1:18003"}, "health": "down"},
                {"labels": {"job": "gateway", "instance": "127.0.0.1:18201"}}],
            "droppedTargets": []}})

    instances = _client(httpx.MockTransport(handler)).scraped_instances("vllm")
    assert instances == {"127.0.0.1:18001", "127.0.0.1:18003"}
    assert seen[0].url.path == "/api/v1/targets"
    assert seen[0].url.params["state"] == "active"
