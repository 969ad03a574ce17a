"""Timing math on a fake clock: TTFT, ITL, e2e, TPOT exactly as vLLM's benchmark."""

from __future__ import annotations

import json

import pytest

from harness.load import Api
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import DONE, FakeServer, content, send_one, spec, usage


@pytest.mark.asyncio
async def test_ttft_itl_e2e_tpot_follow_vllm_definitions(server: FakeServer,
                                                         clock: FakeClock) -> None:
    server.then(server.stream([(0.2, content("a")), (0.05, content("b")),
                               (0.05, content("c")), (0.1, content("d", "length")),
                               (0.3, usage(4)), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.ok
    assert result.ttft_s == pytest.approx(0.2)
    assert result.itl_s == pytest.approx((0.05, 0.05, 0.1))
    assert result.e2e_s == pytest.approx(0.4)  # last content chunk, not the usage chunk
    assert result.elapsed_s == pytest.approx(0.7)
    assert result.tpot_s == pytest.approx((0.4 - 0.2) / 3)
    assert (result.output_tokens, result.prompt_tokens, result.chunks) == (4, 7, 4)
    assert result.finish_reason == "length"
    assert (result.status, result.retries, result.attempt) == (200, 0, 1)


@pytest.mark.asyncio
async def test_output_tokens_come_from_usage_when_sent(server: FakeServer,
                                                       clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("ab")), (0.1, usage(9)), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.output_tokens == 9
    assert result.chunks == 1


@pytest.mark.asyncio
async def test_output_tokens_fall_back_to_chunk_count(server: FakeServer,
                                                      clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a")), (0.1, content("b")), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.output_tokens == 2
    assert result.prompt_tokens is None


@pytest.mark.asyncio
async def test_single_token_has_no_tpot(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a")), (0.0, usage(1)), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.tpot_s is None
    assert result.e2e_s == pytest.approx(0.1)


@pytest.mark.asyncio
async def test_schedule_lag_and_sent_at_use_the_clock(server: FakeServer,
                                                      clock: FakeClock) -> None:
    server.then(server.ok())
    result = await send_one(server, spec(), clock)
    assert result.sent_at == pytest.approx(clock.wall_offset + 1_000.0)
    assert result.schedule_lag_s == 0.0


@pytest.mark.asyncio
async def test_request_carries_id_header_and_streaming_body(server: FakeServer,
                                                            clock: FakeClock) -> None:
    server.then(server.ok())
    await send_one(server, spec(), clock, request_id="drill-7")
    request = server.requests[0]
    assert request.url.path == "/v1/completions"
    assert request.headers["x-request-id"] == "drill-7"
    assert "idempotency-key" not in request.headers  # only when retries are on
    body = json.loads(request.content)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["ignore_eos"] is True
    assert body["model"] == "tiny"
    assert body["max_tokens"] == 64
    assert len(body["prompt"].split()) == 32


@pytest.mark.asyncio
async def test_chat_api_counts_delta_chunks(server: FakeServer, clock: FakeClock) -> None:
    def chat(delta: dict[str, str]) -> bytes:
        return f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode()

    server.then(server.stream([(0.3, chat({"role": "assistant", "content": ""})),
                               (0.02, chat({"content": "hi"})), (0.0, usage(2)),
                               (0.0, DONE)]))
    result = await send_one(server, spec(api=Api.CHAT, record_text=True), clock)
    assert server.requests[0].url.path == "/v1/chat/completions"
    assert server.bodies()[0]["messages"][0]["role"] == "user"
    assert result.ttft_s == pytest.approx(0.3)
    assert result.completion_text == "hi"


@pytest.mark.asyncio
async def test_results_hold_no_text_without_opt_in(server: FakeServer,
                                                   clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("secret-completion")), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    prompt = server.bodies()[0]["prompt"]
    line = result.to_json()
    assert result.prompt_text is None and result.completion_text is None
    assert "secret-completion" not in line
    assert prompt not in line
    assert "prompt_text" not in json.loads(line)


@pytest.mark.asyncio
async def test_opt_in_keeps_prompt_and_completion(server: FakeServer,
                                                  clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("hel")), (0.1, content("lo")), (0.0, DONE)]))
    result = await send_one(server, spec(record_text=True), clock)
    assert result.completion_text == "hello"
    assert result.prompt_text == server.bodies()[0]["prompt"]


@pytest.mark.asyncio
async def test_non_streaming_request(server: FakeServer, clock: FakeClock) -> None:
    body = {"choices": [{"index": 0, "text": "abc", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5}}
    server.then(server.stream([(0.25, json.dumps(body).encode())],
                              content_type="application/json"))
    result = await send_one(server, spec(stream=False), clock)
    assert "stream_options" not in server.bodies()[0]
    assert result.ok
    assert result.ttft_s == result.e2e_s == pytest.approx(0.25)
    assert result.output_tokens == 5
