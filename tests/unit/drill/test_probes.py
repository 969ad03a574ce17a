"""Probes: gateway and front-door views, node counters, single requests and property
waits, on a fake stack's HTTP answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from harness.drill import (
    DrillFailed,
    ProbeError,
    answered_whole,
    await_property,
    completion,
    front_door_log,
    front_door_state,
    gateways_see,
    node_counter,
    streamed_ttft,
)
from harness.load.result import CancelReason, ErrorInfo, ErrorType, RequestResult
from tests.fakes import vllm_text
from tests.unit.drill.fakestack import FakeRuntime, FakeStack


@pytest.fixture
def fake() -> FakeStack:
    return FakeStack()


def test_gateways_see_a_node_by_its_proxied_url(fake: FakeStack, tmp_path: Path) -> None:
    fake.worker_health[("gateway-b", "node1")] = 0
    assert gateways_see(fake.drill(tmp_path), "node1") == {"gateway-a": 1.0, "gateway-b": 0.0}


def test_a_node_a_gateway_does_not_list_is_none(fake: FakeStack, tmp_path: Path) -> None:
    del fake.worker_health[("gateway-a", "node2")]
    assert gateways_see(fake.drill(tmp_path), "node2") == {"gateway-a": None, "gateway-b": 1.0}


def test_front_door_state_is_the_state_haproxy_reports(fake: FakeStack, tmp_path: Path) -> None:
    fake.backends["gateway-a"] = "DOWN"
    drill = fake.drill(tmp_path)
    assert front_door_state(drill, "gateway-a") == "DOWN"
    assert front_door_state(drill, "gateway-b") == "UP"
    assert front_door_state(drill, "gateway-z") == "absent"


def test_node_counter_totals_a_metric_and_raises_on_an_absent_one(
        fake: FakeStack, tmp_path: Path) -> None:
    fake.node_metrics["node1"] = vllm_text(gen=1234)
    drill = fake.drill(tmp_path)
    assert node_counter(drill, "node1", "vllm:generation_tokens_total") == 1234.0
    with pytest.raises(ProbeError, match="vllm:no_such_metric"):
        node_counter(drill, "node1", "vllm:no_such_metric")


def test_await_property_records_a_verdict_once_the_check_holds(
        fake: FakeStack, tmp_path: Path) -> None:
    drill = fake.drill(tmp_path)
    answers = iter([False, True])
    took = await_property(drill, "node1 marked down", 5, lambda: next(answers))
    assert 0 < took < 5
    [verdict] = drill.verdicts
    assert (verdict.property, verdict.ok) == ("node1 marked down", True)
    assert verdict.detail == f"after {took:.1f}s"


def test_await_property_treats_an_unreachable_component_as_not_yet(
        fake: FakeStack, tmp_path: Path) -> None:
    drill = fake.drill(tmp_path)
    calls: list[int] = []

    def check() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        return True

    await_property(drill, "gateway back", 5, check)
    assert len(calls) == 2
    assert drill.verdicts[-1].ok


def test_await_property_fails_the_drill_with_what_it_last_saw(
        fake: FakeStack, tmp_path: Path) -> None:
    drill = fake.drill(tmp_path)
    with pytest.raises(DrillFailed) as caught:
        await_property(drill, "traffic moved", 0, lambda: False, seen=lambda: {"node2": 7})
    assert caught.value.property == "traffic moved"
    assert "last seen: {'node2': 7}" in caught.value.detail
    assert [(v.property, v.ok) for v in drill.verdicts] == [("traffic moved", False)]


def test_completion_asks_for_exactly_the_tokens_given(fake: FakeStack, tmp_path: Path) -> None:
    fake.completions = lambda request: httpx.Response(400, json={"error": {"message": "long"}})
    drill = fake.drill(tmp_path)
    response = completion(drill, "http://127.0.0.1:18080", tokens=7, prompt="word word")
    assert response.status_code == 400
    [request] = [r for r in fake.requests if r.url.path == "/v1/completions"]
    assert json.loads(request.content) == {
        "model": fake.topology.model.served_name, "prompt": "word word", "max_tokens": 7,
        "ignore_eos": True, "temperature": 0}


def sse(*events: str) -> httpx.Response:
    return httpx.Response(200, content="".join(f"{e}\n\n" for e in events).encode(),
                          headers={"content-type": "text/event-stream"})


def test_streamed_ttft_is_the_time_to_the_first_chunk(fake: FakeStack, tmp_path: Path) -> None:
    fake.completions = lambda request: sse(': keep-alive',
                                           'data: {"choices": [{"index": 0, "text": "a"}]}',
                                           "data: [DONE]")
    ttft = streamed_ttft(fake.drill(tmp_path), "http://127.0.0.1:18080")
    assert 0 <= ttft < 5
    [request] = [r for r in fake.requests if r.url.path == "/v1/completions"]
    assert json.loads(request.content)["stream"] is True


def test_a_stream_without_chunks_is_a_protocol_error(fake: FakeStack, tmp_path: Path) -> None:
    fake.completions = lambda request: sse("data: [DONE]")
    with pytest.raises(httpx.RemoteProtocolError, match="before any chunk"):
        streamed_ttft(fake.drill(tmp_path), "http://127.0.0.1:18080")


def test_a_failed_stream_raises_its_status(fake: FakeStack, tmp_path: Path) -> None:
    fake.completions = lambda request: httpx.Response(503, text="no workers")
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        streamed_ttft(fake.drill(tmp_path), "http://127.0.0.1:18080")


FRONT_DOOR_LOG = (Path(__file__).parents[2] / "fixtures" / "logs" / "frontdoor.log").read_text()


def front_door_reads(fake: FakeStack, *reads: str) -> FakeRuntime:
    return FakeRuntime(fake.topology, logs={fake.topology.front_door.name: list(reads)})


def test_the_front_door_log_is_read_once_it_holds_every_request_it_answered(
        fake: FakeStack, tmp_path: Path) -> None:
    """Its last lines reach the file after the responses: a read before they do would
    count a shed request as one the front door never handled."""
    written_so_far = "\n".join(FRONT_DOOR_LOG.splitlines()[:5])
    drill = fake.drill(tmp_path, front_door_reads(fake, written_so_far, FRONT_DOOR_LOG))

    log = front_door_log(drill, covering=["fd-b", "fd-shed2"], catch_up_s=5)

    assert {"fd-b", "fd-shed2"} <= log.requests.keys()


def test_a_request_the_front_door_never_logged_is_an_error_not_an_absence(
        fake: FakeStack, tmp_path: Path) -> None:
    drill = fake.drill(tmp_path, front_door_reads(fake, FRONT_DOOR_LOG))

    with pytest.raises(ProbeError, match=r"1 of 2 not logged.*fd-never"):
        front_door_log(drill, covering=["fd-b", "fd-never"], catch_up_s=0.3)


def result(rid: str, status: int, error: ErrorInfo | None = None,
           cancelled: CancelReason | None = None) -> RequestResult:
    return RequestResult(request_id="c", sent_at=0.0, schedule_lag_s=0.0, ttft_s=None, itl_s=(),
                         e2e_s=None, elapsed_s=1.0, output_tokens=0, prompt_tokens=None,
                         chunks=0, status=status, stack_request_id=rid, error=error,
                         cancelled=cancelled)


def test_only_responses_the_front_door_sent_whole_are_awaited_in_its_log() -> None:
    """A stream the client left, or one cut, it logs when it notices: maybe a timeout later."""
    cut = ErrorInfo(kind=ErrorType.STREAM_CUT, message="RemoteProtocolError")
    shed = ErrorInfo(kind=ErrorType.CLIENT, message="overloaded")
    results = [result("fd-ok", 200), result("fd-shed", 429, error=shed),
               result("fd-left", 200, cancelled=CancelReason.CHUNKS),
               result("fd-cut", 200, error=cut)]

    assert answered_whole(results) == ["fd-ok", "fd-shed"]
