"""LLM-serving extensions: HTTP-aware toxics (not in Toxiproxy).

They are added through the same API as the standard toxics, under their own
type names, and understand HTTP/1.1 framing (Content-Length, chunked,
keep-alive) so one connection reused by a gateway for many requests is
handled request by request. Their toxicity is drawn **per request** (per
response for the SSE ones), not per connection.

``sse_cut`` (downstream)
    Cut a ``text/event-stream`` response after ``events`` complete ``data:``
    events (0 = right after the response head): the client sees a truncated
    chunked body and the upstream sees the client go away.
``sse_stall`` (downstream)
    After ``after_events`` events (0 = right after the head) stop forwarding
    for ``duration`` ms (0 = until the toxic is removed), keeping the
    connection open; then forward what was held and carry on.
``http_error`` (upstream)
    Answer a request whose path starts with ``path_prefix`` with ``status``
    instead of forwarding it, with an OpenAI-style JSON error body and, when
    ``retry_after`` > 0, a ``Retry-After`` header (seconds).
``hold_upstream`` (downstream)
    A proxy that does not propagate client disconnects: when the client
    closes, keep the upstream connection open, reading and dropping what it
    sends, until it closes by itself or ``max_hold`` ms pass (0 = no limit);
    removing the toxic closes the held upstreams. Toxicity is per connection.
    The hold itself is run by :class:`~harness.toxiproxy.connection.Connection`.
"""

from __future__ import annotations

import asyncio
import http
import json
from dataclasses import dataclass

from harness.toxiproxy.httpscan import MAX_HEAD, Head, MarkKind, MessageScanner
from harness.toxiproxy.link import Chunk, Stage, noop_pipe
from harness.toxiproxy.state import Attributes, Direction, ToxicKind

ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    408: "RequestTimeoutError",
    429: "RateLimitError",
    500: "InternalServerError",
    502: "BadGatewayError",
    503: "ServiceUnavailableError",
    504: "GatewayTimeoutError",
}


@dataclass(frozen=True)
class SseCutAttributes(Attributes):
    events: int = 1


@dataclass(frozen=True)
class SseStallAttributes(Attributes):
    after_events: int = 1
    duration: int = 0


@dataclass(frozen=True)
class HttpErrorAttributes(Attributes):
    status: int = 503
    retry_after: int = 0
    message: str = ""
    path_prefix: str = ""


@dataclass(frozen=True)
class HoldUpstreamAttributes(Attributes):
    max_hold: int = 60_000  # ms; 0 = until the upstream closes or the toxic is removed


def _draw(stage: Stage, head: Head | None) -> bool:
    return (head is not None and head.is_event_stream
            and stage.rng.random() < stage.toxic.toxicity)


def _split_point(stage: Stage, scanner: MessageScanner, data: bytes,
                 threshold: int, armed: list[bool]) -> int | None:
    """Offset in ``data`` after ``threshold`` events of an armed response."""
    for mark in scanner.feed(data):
        if mark.kind is MarkKind.HEAD_END:
            armed[:] = [_draw(stage, mark.head), False]  # [armed, unused]
            stage.transmitted = 0  # events seen in this response
            if armed[0] and threshold <= 0:
                armed[0] = False
                return mark.offset
        elif mark.kind is MarkKind.EVENT_END and armed[0]:
            stage.transmitted += 1
            if stage.transmitted >= threshold:
                armed[0] = False
                return mark.offset
    return None


def _put_bytes(stage: Stage, data: bytes, stamp: float) -> None:
    if data:
        stage.put(Chunk(data, stamp))


async def sse_cut_pipe(stage: Stage) -> None:
    scanner = MessageScanner(requests=False)
    armed = [False, False]
    while (chunk := await stage.get()) is not None:
        attrs = stage.toxic.attributes
        assert isinstance(attrs, SseCutAttributes)
        cut = _split_point(stage, scanner, chunk.data, attrs.events, armed)
        if cut is None:
            stage.put(chunk)
            continue
        _put_bytes(stage, chunk.data[:cut], chunk.stamp)
        stage.link.conn.proxy.stats.injected(stage.toxic)
        break
    stage.close()


async def sse_stall_pipe(stage: Stage) -> None:
    scanner = MessageScanner(requests=False)
    armed = [False, False]
    while (chunk := await stage.get()) is not None:
        attrs = stage.toxic.attributes
        assert isinstance(attrs, SseStallAttributes)
        at = _split_point(stage, scanner, chunk.data, attrs.after_events, armed)
        if at is None:
            stage.put(chunk)
            continue
        _put_bytes(stage, chunk.data[:at], chunk.stamp)
        stage.link.conn.proxy.stats.injected(stage.toxic)
        rest = Chunk(chunk.data[at:], chunk.stamp)
        stage.pending.append(rest)
        await _stall(attrs.duration)
        stage.pending.remove(rest)
        _put_bytes(stage, rest.data, rest.stamp)
    stage.close()


async def _stall(duration_ms: int) -> None:
    if duration_ms > 0:
        await asyncio.sleep(duration_ms / 1000)
    else:
        await asyncio.get_running_loop().create_future()  # until interrupted


def error_response(attrs: HttpErrorAttributes, close: bool) -> bytes:
    """The injected HTTP response, body shaped like vLLM's / OpenAI's errors."""
    try:
        phrase = http.HTTPStatus(attrs.status).phrase
    except ValueError:
        phrase = "Error"
    message = attrs.message or f"{phrase} (injected by the llm-drill fault proxy)"
    body = json.dumps({"error": {
        "message": message,
        "type": ERROR_TYPES.get(attrs.status, "APIError"),
        "param": None,
        "code": attrs.status,
    }}).encode()
    lines = [f"HTTP/1.1 {attrs.status} {phrase}", "content-type: application/json",
             f"content-length: {len(body)}", "x-llm-drill-fault: http_error"]
    if attrs.retry_after > 0:
        lines.append(f"retry-after: {attrs.retry_after}")
    lines.append("connection: close" if close else "connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _RequestFilter:
    """Per-connection state of http_error: hold heads, forward or drop requests."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.scanner = MessageScanner(requests=True)
        self.mode = "hold"
        self.head: Head | None = None
        self.held = Chunk(b"", 0.0)

    def feed(self, chunk: Chunk) -> bool:
        """Process one chunk; False once the connection must close."""
        data, pos = chunk.data, 0
        for mark in self.scanner.feed(data):
            segment = data[pos:mark.offset]
            pos = mark.offset
            if mark.kind is MarkKind.HEAD_END:
                self._decide(mark.head, segment, chunk.stamp)
            elif mark.kind is MarkKind.MESSAGE_END and not self._finish(segment, chunk.stamp):
                return False
        self._rest(data[pos:], chunk.stamp)
        return True

    def _decide(self, head: Head | None, segment: bytes, stamp: float) -> None:
        whole = self._release() + segment
        attrs = self.stage.toxic.attributes
        assert isinstance(attrs, HttpErrorAttributes) and head is not None
        inject = (head.target.startswith(attrs.path_prefix)
                  and self.stage.rng.random() < self.stage.toxic.toxicity)
        self.head, self.mode = head, ("drop" if inject else "forward")
        if not inject:
            _put_bytes(self.stage, whole, stamp)

    def _finish(self, segment: bytes, stamp: float) -> bool:
        mode, self.mode = self.mode, "hold"
        if mode == "forward":
            _put_bytes(self.stage, segment, stamp)
            return True
        if mode != "drop" or self.head is None:
            return True
        attrs = self.stage.toxic.attributes
        assert isinstance(attrs, HttpErrorAttributes)
        client = self.stage.link.conn.client.transport
        if client is not None and not client.is_closing():
            client.write(error_response(attrs, self.head.wants_close))
        self.stage.link.conn.proxy.stats.injected(self.stage.toxic)
        return not self.head.wants_close

    def _rest(self, rest: bytes, stamp: float) -> None:
        if self.mode == "forward":
            _put_bytes(self.stage, rest, stamp)
        elif self.mode == "hold" and rest:
            self._hold(rest, stamp)

    def _hold(self, rest: bytes, stamp: float) -> None:
        held = self._release() + rest
        if len(held) > MAX_HEAD:  # not HTTP after all: pass it through
            self.mode = "forward"
            _put_bytes(self.stage, held, stamp)
            return
        self.held = Chunk(held, stamp)
        self.stage.pending.append(self.held)

    def _release(self) -> bytes:
        if self.held in self.stage.pending:
            self.stage.pending.remove(self.held)
        data, self.held = self.held.data, Chunk(b"", 0.0)
        return data


async def http_error_pipe(stage: Stage) -> None:
    requests = _RequestFilter(stage)
    while (chunk := await stage.get()) is not None:
        if not requests.feed(chunk):
            break
    stage.close()


LLM_KINDS: tuple[ToxicKind, ...] = (
    ToxicKind("sse_cut", SseCutAttributes(), sse_cut_pipe, per_request=True,
              stream=Direction.DOWNSTREAM, extension=True),
    ToxicKind("sse_stall", SseStallAttributes(), sse_stall_pipe, per_request=True,
              stream=Direction.DOWNSTREAM, extension=True),
    ToxicKind("http_error", HttpErrorAttributes(), http_error_pipe, per_request=True,
              stream=Direction.UPSTREAM, extension=True),
    # Data passes untouched; the connection holds the upstream when the client leaves.
    ToxicKind("hold_upstream", HoldUpstreamAttributes(), noop_pipe,
              stream=Direction.DOWNSTREAM, extension=True, holds_upstream=True),
)
