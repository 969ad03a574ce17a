"""A scripted OpenAI-compatible server on httpx.MockTransport, driven by a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import httpx

from harness.load import LoadSpec, Requester, RequestResult
from harness.load.prompts import build_plan
from tests.fakes import FakeClock

TARGET = "http://127.0.0.1:8000"


def content(text: str, finish: str | None = None) -> bytes:
    chunk = {"id": "c", "object": "text_completion",
             "choices": [{"index": 0, "text": text, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def usage(completion: int, prompt: int = 7) -> bytes:
    body = {"id": "c", "choices": [], "usage": {"prompt_tokens": prompt,
                                                 "completion_tokens": completion}}
    return f"data: {json.dumps(body)}\n\n".encode()


DONE = b"data: [DONE]\n\n"


class Script(httpx.AsyncByteStream):
    """A response body: ``(delay, bytes)`` pieces; the fake clock moves by ``delay`` first.

    ``stall`` makes the body hang after its pieces (a stuck server: only the
    client's own deadline ends the wait); ``fail`` raises after them.
    """

    def __init__(self, clock: FakeClock, pieces: Iterable[tuple[float, bytes]], *,
                 stall: bool = False, fail: Exception | None = None,
                 gate: asyncio.Event | None = None) -> None:
        self.clock, self.pieces = clock, list(pieces)
        self.stall, self.fail, self.gate = stall, fail, gate
        self.yielded = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.gate is not None:
            await self.gate.wait()
        for delay, piece in self.pieces:
            self.clock.advance(delay)
            self.yielded += 1
            yield piece
        if self.stall:
            await asyncio.Event().wait()
        if self.fail is not None:
            raise self.fail

    async def aclose(self) -> None:
        self.closed = True


Reply = Callable[[httpx.Request], httpx.Response]


class FakeServer:
    """Answers each request with the next scripted reply (the last one repeats)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.replies: list[Reply] = []
        self.scripts: list[Script] = []

    def then(self, *replies: Reply) -> FakeServer:
        self.replies.extend(replies)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return reply(request)

    def stream(self, pieces: Iterable[tuple[float, bytes]], *, status: int = 200,
               content_type: str = "text/event-stream; charset=utf-8", stall: bool = False,
               fail: Exception | None = None, gate: asyncio.Event | None = None) -> Reply:
        pieces = list(pieces)

        def reply(request: httpx.Request) -> httpx.Response:
            script = Script(self.clock, pieces, stall=stall, fail=fail, gate=gate)
            self.scripts.append(script)
            return httpx.Response(status, headers={"content-type": content_type},
                                  stream=script)
        return reply

    def ok(self, texts: Iterable[str] = ("a", "b", "c"), gap: float = 0.01,
           gate: asyncio.Event | None = None) -> Reply:
        texts = list(texts)
        pieces = [(gap, content(t)) for t in texts] + [(0.0, usage(len(texts))), (0.0, DONE)]
        return self.stream(pieces, gate=gate)

    def status(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None
               ) -> Reply:
        return lambda request: httpx.Response(code, content=body, headers=headers or {})

    def raises(self, make: Callable[[httpx.Request], Exception]) -> Reply:
        def reply(request: httpx.Request) -> httpx.Response:
            raise make(request)
        return reply

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))


def spec(**overrides: Any) -> LoadSpec:
    fields: dict[str, Any] = {"target": TARGET, "model": "tiny", "max_requests": 1,
                              "duration_s": 10.0, "concurrency": 1}
    fields.update(overrides)
    return LoadSpec(**fields)


async def send_one(server: FakeServer, load_spec: LoadSpec, clock: FakeClock,
                   request_id: str = "rid-1") -> RequestResult:
    """Send one request of ``load_spec`` through ``server`` and return its result."""
    emitted: list[RequestResult] = []
    async with server.client() as client:
        requester = Requester(client, load_spec, clock=clock, emit=emitted.append)
        result = await requester.send(build_plan(load_spec, 0, request_id, clock.now()))
    assert emitted == [result]
    return result


class _SSEHandler(http.server.BaseHTTPRequestHandler):
    """A real (tiny) OpenAI-compatible streaming server for BackgroundLoad tests."""

    def do_GET(self) -> None:
        self._send(200, "application/json", b'{"object": "list", "data": []}')

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length))
        pieces = b"".join(content("x") for _ in range(body["max_tokens"]))
        self._send(200, "text/event-stream", pieces + usage(body["max_tokens"]) + DONE)

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def sse_http_server() -> Iterator[str]:
    """Serve :class:`_SSEHandler` on 127.0.0.1 (ephemeral port); yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SSEHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
