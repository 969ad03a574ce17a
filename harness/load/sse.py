"""Server-sent events as OpenAI streams them, parsed incrementally from raw bytes.

:class:`SSEDecoder` turns bytes into the ``data`` payloads of complete events
(lines ``data: ...`` ended by a blank line; ``\\n``, ``\\r\\n`` and ``\\r``
line ends; ``:`` comment lines and other fields ignored). :func:`parse_chunk`
turns one payload into a :class:`Chunk`, raising :class:`ProtocolViolationError`
when the payload is not an OpenAI stream chunk. :func:`stream_chunks` does both for
a synchronous byte stream and stamps each chunk with its arrival time.

This is the project's one SSE parser: the load generator reads it asynchronously
(``harness.load.client``), drills' probes and the canary synchronously. It is kept
instead of ``httpx-sse`` because the load generator needs what that package does not
give: the bytes' arrival time per chunk, and whether a stream that ended stopped
inside an event (``pending``: a cut stream, not a finished one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from harness.load.result import ErrorInfo, ErrorType

DONE = "[DONE]"
HEAD_BYTES = 200


class ProtocolViolationError(Exception):
    """The bytes received are not the OpenAI streaming protocol."""

    def __init__(self, reason: str, head: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.head = head


class SSEDecoder:
    """Incremental SSE decoder: ``feed(bytes)`` returns the data of each complete event."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, raw: bytes) -> list[str]:
        self._buffer += raw
        lines = self._buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._buffer = lines.pop()
        events: list[str] = []
        for line in lines:
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> str | None:
        if not line:
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered (a truncated stream)."""
        return bool(self._buffer.strip()) or bool(self._data)


@dataclass(frozen=True)
class Chunk:
    """What one stream chunk carried that the measurement needs."""

    has_choices: bool = False
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class TimedChunk:
    """One chunk and when its bytes arrived (seconds on the caller's clock)."""

    at: float
    chunk: Chunk


def stream_chunks(raw: Iterable[bytes], now: Callable[[], float]) -> Iterator[TimedChunk]:
    """The chunks of one SSE byte stream as they arrive, up to ``data: [DONE]``.

    ``now`` is read once per read of bytes, right after it returns, so every chunk
    carries the time its bytes arrived. Raises :class:`ProtocolViolationError` on a
    payload that is not a stream chunk.
    """
    decoder = SSEDecoder()
    for piece in raw:
        at = now()
        for data in decoder.feed(piece):
            if data == DONE:
                return
            yield TimedChunk(at, parse_chunk(data))


def parse_chunk(data: str) -> Chunk:
    """Parse one ``data:`` payload of a completions or chat completions stream."""
    try:
        obj = json.loads(data)
    except ValueError:
        raise ProtocolViolationError("stream event is not JSON", data[:HEAD_BYTES]) from None
    if not isinstance(obj, dict):
        raise ProtocolViolationError("stream event is not a JSON object", data[:HEAD_BYTES])
    if "error" in obj:
        return Chunk(error=error_from_json(obj, status=None))
    usage = obj.get("usage") or {}
    choice = _first_choice(obj, data)
    return Chunk(has_choices=choice is not None, text=_choice_text(choice),
                 finish_reason=_str_or_none(choice.get("finish_reason") if choice else None),
                 completion_tokens=_int_or_none(usage.get("completion_tokens")),
                 prompt_tokens=_int_or_none(usage.get("prompt_tokens")))


def _first_choice(obj: dict[str, object], data: str) -> dict[str, object] | None:
    choices = obj.get("choices")
    if choices is None or choices == []:
        return None
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ProtocolViolationError("choices is not a list of objects", data[:HEAD_BYTES])
    return choices[0]


def _choice_text(choice: dict[str, object] | None) -> str:
    if choice is None:
        return ""
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
    return text if isinstance(text, str) else ""


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def error_from_json(obj: dict[str, object], status: int | None) -> ErrorInfo:
    """Map ``{"error": {...}}`` or a flat ``{"message", "type", "code"}`` body to ErrorInfo."""
    inner = obj.get("error")
    body = inner if isinstance(inner, dict) else obj
    code = body.get("code")
    if status is None:
        status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    message = body.get("message", inner if isinstance(inner, str) else "")
    request_id = body.get("request_id")
    return ErrorInfo(kind=ErrorType.for_status(status), type=str(body.get("type") or ""),
                     code="" if code is None else str(code), message=str(message),
                     request_id=request_id if isinstance(request_id, str) else "")


def error_from_body(status: int, body: bytes) -> ErrorInfo:
    """An HTTP error response: its OpenAI error object, or its first bytes if not JSON."""
    text = body.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return error_from_json(obj, status)
    return ErrorInfo(kind=ErrorType.for_status(status), message="body is not JSON",
                     head=text[:HEAD_BYTES])
