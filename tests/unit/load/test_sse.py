"""SSE parsing and error classification, including broken streams."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.load import ErrorType
from harness.load.sse import ProtocolViolationError, SSEDecoder, parse_chunk, stream_chunks
from tests.fakes import FakeClock
from tests.unit.load.loadfakes import DONE, FakeServer, content, send_one, spec, usage


def test_decoder_joins_events_split_across_reads() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: {\"a\"") == []
    assert decoder.feed(b": 1}\n") == []
    assert decoder.feed(b"\ndata: [DONE]\n\n") == ['{"a": 1}', "[DONE]"]
    assert not decoder.pending


def test_decoder_handles_crlf_comments_fields_and_multiline_data() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": keep-alive\r\n\r\nevent: x\r\nid: 3\r\ndata: one\r\n"
                          b"data:two\r\n\r\n")
    assert events == ["one\ntwo"]


def test_decoder_reports_a_truncated_event() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: {\"choices\": [")
    assert decoder.pending


@pytest.mark.parametrize("payload", ["not json", "[1, 2]", '{"choices": "x"}'])
def test_parse_chunk_rejects_what_is_not_a_chunk(payload: str) -> None:
    with pytest.raises(ProtocolViolationError) as info:
        parse_chunk(payload)
    assert info.value.head == payload


def test_parse_chunk_reads_usage_and_error() -> None:
    assert parse_chunk('{"choices": [], "usage": {"completion_tokens": 3}}').completion_tokens == 3
    error = parse_chunk('{"error": {"message": "boom", "type": "InternalServerError", '
                        '"code": 500}}').error
    assert error is not None
    assert (error.kind, error.type, error.code, error.message) == (
        ErrorType.SERVER, "InternalServerError", "500", "boom")


@pytest.mark.asyncio
async def test_http_400_is_parsed_to_the_openai_error_schema(server: FakeServer,
                                                             clock: FakeClock) -> None:
    body = (b'{"error": {"message": "max_tokens is too large", "type": "BadRequestError",'
            b' "param": null, "code": 400}}')
    server.then(server.status(400, body))
    result = await send_one(server, spec(), clock)
    assert result.status == 400
    assert result.error is not None
    assert result.error.kind is ErrorType.CLIENT
    assert (result.error.type, result.error.code) == ("BadRequestError", "400")
    assert result.error.message == "max_tokens is too large"
    assert result.attempt is None and not result.ok


@pytest.mark.asyncio
async def test_non_json_5xx_keeps_its_first_bytes(server: FakeServer, clock: FakeClock) -> None:
    html = b"<html><body><h1>503 Service Unavailable</h1>" + b"x" * 1000
    server.then(server.status(503, html))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.SERVER
    assert result.error.head.startswith("<html><body><h1>503")
    assert len(result.error.head) == 200


@pytest.mark.asyncio
async def test_non_json_event_is_a_protocol_error(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([(0.1, b"data: <html>oops</html>\n\n"), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.PROTOCOL
    assert result.error.head == "<html>oops</html>"


@pytest.mark.asyncio
async def test_broken_bytes_after_content_are_redacted(server: FakeServer,
                                                       clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("private words")),
                               (0.1, b'data: {"choices": [{"text": "more priv\n\n')]))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.PROTOCOL
    assert "priv" not in result.error.head
    assert "redacted" in result.error.head


@pytest.mark.asyncio
async def test_wrong_content_type_is_a_protocol_error(server: FakeServer,
                                                      clock: FakeClock) -> None:
    server.then(server.stream([(0.0, b"<html>login</html>")], content_type="text/html"))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.PROTOCOL
    assert "text/html" in result.error.message
    assert result.error.head == "<html>login</html>"


@pytest.mark.asyncio
async def test_stream_without_done_is_cut(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a")), (0.1, content("b"))]))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.STREAM_CUT
    assert "[DONE]" in result.error.message
    assert result.ttft_s == pytest.approx(0.1)  # what arrived is still measured
    assert result.e2e_s is None


@pytest.mark.asyncio
async def test_stream_ending_inside_an_event_is_cut(server: FakeServer,
                                                    clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a")), (0.1, b'data: {"choi')]))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.STREAM_CUT
    assert "inside an event" in result.error.message


@pytest.mark.asyncio
async def test_connection_reset_mid_stream_is_cut(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a"))],
                              fail=httpx.RemoteProtocolError("peer closed connection")))
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is ErrorType.STREAM_CUT
    assert result.chunks == 1


@pytest.mark.asyncio
async def test_error_event_in_stream_takes_its_code(server: FakeServer, clock: FakeClock) -> None:
    event = (b'data: {"error": {"message": "engine dead", "type": "InternalServerError",'
             b' "code": 500}}\n\n')
    server.then(server.stream([(0.1, content("a")), (0.1, event), (0.0, DONE)]))
    result = await send_one(server, spec(), clock)
    assert result.status == 200
    assert result.error is not None
    assert result.error.kind is ErrorType.SERVER
    assert result.error.message == "engine dead"


@pytest.mark.asyncio
@pytest.mark.parametrize(("make", "kind"), [
    (lambda r: httpx.ConnectError("refused", request=r), ErrorType.CONNECT),
    (lambda r: httpx.ConnectTimeout("slow", request=r), ErrorType.TIMEOUT),
    (lambda r: httpx.ReadTimeout("slow", request=r), ErrorType.TIMEOUT),
    (lambda r: httpx.RemoteProtocolError("Server disconnected without sending a response",
                                         request=r), ErrorType.CONNECT),
    (lambda r: httpx.UnsupportedProtocol("ftp", request=r), ErrorType.PROTOCOL),
])
async def test_transport_errors_are_classified(server: FakeServer, clock: FakeClock,
                                               make: object, kind: ErrorType) -> None:
    server.then(server.raises(make))  # type: ignore[arg-type]  # make: the lambdas above
    result = await send_one(server, spec(), clock)
    assert result.error is not None
    assert result.error.kind is kind
    assert result.status is None


@pytest.mark.asyncio
async def test_events_after_done_are_ignored(server: FakeServer, clock: FakeClock) -> None:
    server.then(server.stream([(0.1, content("a")), (0.0, usage(1)), (0.0, DONE),
                               (5.0, content("late"))]))
    result = await send_one(server, spec(), clock)
    assert result.ok
    assert result.chunks == 1


def test_stream_chunks_stamps_each_chunk_with_its_reads_arrival() -> None:
    clock = FakeClock(start=0.0)

    def reads() -> Iterator[bytes]:
        clock.advance(0.5)
        yield b'data: {"choices": [{"text": "a"}]}\n\ndata: {"choices": [{"te'
        clock.advance(0.25)
        yield b'xt": "b"}]}\n\ndata: {"choices": [], "usage": {"completion_tokens": 2}}\n\n'
        yield b"data: [DONE]\n\n"
        raise AssertionError("read past [DONE]")

    timed = list(stream_chunks(reads(), clock.now))
    assert [(t.at, t.chunk.text, t.chunk.completion_tokens) for t in timed] == [
        (0.5, "a", None), (0.75, "b", None), (0.75, "", 2)]


def test_stream_chunks_rejects_a_payload_that_is_not_a_chunk() -> None:
    with pytest.raises(ProtocolViolationError):
        list(stream_chunks([b"data: <html>\n\n"], lambda: 0.0))
