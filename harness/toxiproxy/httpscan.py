"""Incremental HTTP/1.1 framing and SSE event scanning for the LLM toxics.

The scanners never buffer whole messages: they are fed the raw bytes of a
stream chunk by chunk and report *marks* (offsets in the chunk just fed)
where a message head ends, where an SSE event ends and where a message ends,
so a toxic can cut, hold or drop the raw bytes at exactly those points.
Keep-alive connections carry many messages; the scanner restarts after each.

The bytes come from whoever connects, so the scanner never raises and never
holds more than :data:`MAX_HEAD` bytes: a stream that stops looking like HTTP
(an oversized head or chunk-size line, a chunk size that is not hex) is passed
through uninterpreted until the connection closes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_HEAD = 64 * 1024
MAX_CHUNK_SIZE_DIGITS = 16  # 2**64 - 1 bytes; longer is not a size
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class MarkKind(enum.Enum):
    HEAD_END = "head_end"
    EVENT_END = "event_end"
    MESSAGE_END = "message_end"


@dataclass(frozen=True)
class Head:
    """A parsed request or response head."""

    start_line: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), "")

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        parts = self.start_line.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @property
    def status(self) -> int:
        parts = self.start_line.split(" ")
        return int(parts[1]) if len(parts) > 1 and is_decimal(parts[1]) else 0

    @property
    def wants_close(self) -> bool:
        return "close" in self.header("connection").lower()

    @property
    def is_event_stream(self) -> bool:
        return self.header("content-type").lower().startswith("text/event-stream")


@dataclass(frozen=True)
class Mark:
    kind: MarkKind
    offset: int
    head: Head | None = None


def is_decimal(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts ``'²'``, which ``int`` rejects)."""
    return text.isascii() and text.isdigit()


def chunk_size(line: bytes) -> int | None:
    """The size on a chunk-size line (extensions ignored); None if it is not hex."""
    digits = line.split(b";", 1)[0].strip()
    if not digits or len(digits) > MAX_CHUNK_SIZE_DIGITS or not HEX_DIGITS.issuperset(digits):
        return None
    return int(digits, 16)


def parse_head(raw: bytes) -> Head:
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))
    return Head(lines[0], tuple(headers))


class _State(enum.Enum):
    HEAD = 0
    LENGTH = 1
    CHUNK_SIZE = 2
    CHUNK_DATA = 3
    CHUNK_CRLF = 4
    TRAILER = 5
    UNTIL_CLOSE = 6


class SseCounter:
    """Counts SSE events (blocks ending in a blank line) that carry ``data:``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._line_len = 0
        self._line_prefix = b""
        self._has_data = False

    def feed(self, data: bytes, start: int, end: int) -> list[int]:
        """Scan ``data[start:end]``; return offsets just past each event's end."""
        ends = []
        pos = start
        while pos < end:
            newline = data.find(b"\n", pos, end)
            stop = end if newline < 0 else newline
            if len(self._line_prefix) < 5:
                self._line_prefix += data[pos:min(stop, pos + 5 - len(self._line_prefix))]
            self._line_len += stop - pos
            if newline < 0:
                break
            if self._end_line():
                ends.append(newline + 1)
            pos = newline + 1
        return ends

    def _end_line(self) -> bool:
        blank = self._line_len == 0 or (self._line_len == 1 and self._line_prefix == b"\r")
        is_data = self._line_prefix.startswith(b"data")
        self._line_len, self._line_prefix = 0, b""
        if blank:
            event, self._has_data = self._has_data, False
            return event
        if is_data:
            self._has_data = True
        return False


class MessageScanner:
    """Finds message boundaries (and SSE events in bodies) in an HTTP stream."""

    def __init__(self, *, requests: bool) -> None:
        self._requests = requests
        self._state = _State.HEAD
        self._buf = b""
        self._remaining = 0
        self._sse = SseCounter()
        self._count_events = False

    def feed(self, data: bytes) -> list[Mark]:
        marks: list[Mark] = []
        pos = 0
        while pos < len(data):
            pos = self._step(data, pos, marks)
        return marks

    def _step(self, data: bytes, pos: int, marks: list[Mark]) -> int:
        state = self._state
        if state is _State.HEAD:
            return self._head(data, pos, marks)
        if state is _State.UNTIL_CLOSE:
            self._body(data, pos, len(data), marks)
            return len(data)
        if state in (_State.LENGTH, _State.CHUNK_DATA):
            end = min(len(data), pos + self._remaining)
            self._body(data, pos, end, marks)
            self._remaining -= end - pos
            if self._remaining == 0:
                if state is _State.LENGTH:
                    self._message_end(end, marks)
                else:
                    self._state, self._remaining = _State.CHUNK_CRLF, 2
            return end
        if state is _State.CHUNK_CRLF:
            end = min(len(data), pos + self._remaining)
            self._remaining -= end - pos
            if self._remaining == 0:
                self._state = _State.CHUNK_SIZE
            return end
        return self._line(data, pos, marks)

    def _line(self, data: bytes, pos: int, marks: list[Mark]) -> int:
        newline = data.find(b"\n", pos)
        if newline < 0:
            self._buf += data[pos:]
            if len(self._buf) > MAX_HEAD:
                self._stop_interpreting()
            return len(data)
        line, self._buf = (self._buf + data[pos:newline]).strip(), b""
        if self._state is _State.TRAILER:
            if not line:
                self._message_end(newline + 1, marks)
            return newline + 1
        size = chunk_size(line)
        if size is None:
            self._stop_interpreting()
        elif size == 0:
            self._state = _State.TRAILER
        else:
            self._state, self._remaining = _State.CHUNK_DATA, size
        return newline + 1

    def _head(self, data: bytes, pos: int, marks: list[Mark]) -> int:
        joined = self._buf + data[pos:]
        end = joined.find(b"\r\n\r\n")
        if end < 0:
            if len(joined) > MAX_HEAD:
                self._stop_interpreting()
            else:
                self._buf = joined
            return len(data)
        head = parse_head(joined[:end])
        offset = pos + end + 4 - len(self._buf)
        self._buf = b""
        marks.append(Mark(MarkKind.HEAD_END, offset, head))
        self._begin_body(head, offset, marks)
        return offset

    def _begin_body(self, head: Head, offset: int, marks: list[Mark]) -> None:
        self._sse.reset()
        self._count_events = head.is_event_stream
        chunked = "chunked" in head.header("transfer-encoding").lower()
        length = head.header("content-length")
        status = 0 if self._requests else head.status
        if chunked:
            self._state = _State.CHUNK_SIZE
        elif is_decimal(length) and int(length) > 0:
            self._state, self._remaining = _State.LENGTH, int(length)
        elif self._requests or length == "0" or status < 200 or status in (204, 304):
            self._message_end(offset, marks)
        else:
            self._state = _State.UNTIL_CLOSE

    def _stop_interpreting(self) -> None:
        """Not HTTP (any more): pass the rest of the connection through unscanned."""
        self._state, self._buf, self._count_events = _State.UNTIL_CLOSE, b"", False

    def _body(self, data: bytes, start: int, end: int, marks: list[Mark]) -> None:
        if self._count_events:
            marks.extend(Mark(MarkKind.EVENT_END, o) for o in self._sse.feed(data, start, end))

    def _message_end(self, offset: int, marks: list[Mark]) -> None:
        marks.append(Mark(MarkKind.MESSAGE_END, offset))
        self._state = _State.HEAD
