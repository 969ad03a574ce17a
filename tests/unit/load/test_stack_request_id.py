"""The stack's own request id: the response's X-Request-Id, kept apart from the client's,
and the error body's request_id (the front door's error schema)."""

from __future__ import annotations

import json

import httpx
import pytest

from harness.load import ClientPolicy, ErrorType, RetryPolicy
from harness.load.result import result_from_json
from harness.load.sse import error_from_body
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import FakeServer, send_one, spec

FRONT_DOOR_503 = (b'{"error":{"type":"no_gateway_available","code":503,'
                  b'"message":"no gateway is available to serve the request",'
                  b'"request_id":"fd-42"}}')


def test_an_error_body_with_a_request_id_keeps_it() -> None:
    error = error_from_body(503, FRONT_DOOR_503)
    assert (error.kind, error.type, error.code) == (ErrorType.SERVER, "no_gateway_available",
                                                    "503")
    assert error.request_id == "fd-42"


@pytest.mark.parametrize("body", [
    b'{"error":{"message":"m","type":"BadRequestError","param":null,"code":400}}',
    b'{"error":{"message":"m","type":"t","request_id":7}}',
    b"Request failed: error sending request",
])
def test_an_error_body_without_a_string_request_id_has_none(body: bytes) -> None:
    assert error_from_body(400, body).request_id == ""


@pytest.mark.asyncio
async def test_the_stack_id_is_recorded_apart_from_the_clients(server: FakeServer,
                                                               clock: FakeClock) -> None:
    server.then(server.status(503, FRONT_DOOR_503, headers={"X-Request-Id": "fd-42"}))
    result = await send_one(server, spec(), clock, request_id="client-1")
    assert server.requests[0].headers["x-request-id"] == "client-1"
    assert (result.request_id, result.stack_request_id) == ("client-1", "fd-42")
    assert result.error is not None and result.error.request_id == "fd-42"


@pytest.mark.asyncio
async def test_a_success_records_the_stack_id(server: FakeServer, clock: FakeClock) -> None:
    reply = server.ok()

    def with_id(request: httpx.Request) -> httpx.Response:
        response = reply(request)
        response.headers["X-Request-Id"] = "fd-ok"
        return response

    server.then(with_id)
    result = await send_one(server, spec(), clock)
    assert result.ok and result.stack_request_id == "fd-ok"


@pytest.mark.asyncio
async def test_no_response_means_no_stack_id(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.raises(lambda r: httpx.ConnectError("refused", request=r)))
    result = await send_one(server, spec(), clock)
    assert result.stack_request_id is None
    assert result.error is not None and result.error.kind is ErrorType.CONNECT


@pytest.mark.asyncio
async def test_a_retried_request_keeps_the_last_attempts_stack_id(server: FakeServer,
                                                                  clock: FakeClock) -> None:
    server.then(server.status(502, headers={"X-Request-Id": "fd-1"}),
                server.status(503, FRONT_DOOR_503, headers={"X-Request-Id": "fd-42"}))
    policy = ClientPolicy(retries=RetryPolicy(max_attempts=2, base_backoff_s=0.1,
                                              max_backoff_s=0.1))
    result = await send_one(server, spec(policy=policy), clock)
    assert result.retries == 1 and result.stack_request_id == "fd-42"


@pytest.mark.asyncio
async def test_the_stack_id_survives_the_jsonl_round_trip_and_no_prompt_is_kept(
        server: FakeServer, clock: FakeClock) -> None:
    server.then(server.status(503, FRONT_DOOR_503, headers={"X-Request-Id": "fd-42"}))
    result = await send_one(server, spec(), clock)
    line = result.to_json()
    assert result_from_json(line) == result
    assert "prompt_text" not in json.loads(line)
