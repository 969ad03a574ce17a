"""The HTTP/SSE scanner behind the extensions finds the same marks however bytes are split."""

from __future__ import annotations

import random

from harness.toxiproxy.httpscan import MarkKind, MessageScanner


def chunked(*events: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n")


STREAM = (chunked(b"data: 1\n\n", b"data: 2\r\n\r\ndata: 3\n\n", b": ping\n\n", b"data: [DONE]\n\n")
          + b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


def absolute_marks(pieces: list[bytes]) -> list[tuple[MarkKind, int]]:
    scanner, base, found = MessageScanner(requests=False), 0, []
    for piece in pieces:
        found += [(m.kind, base + m.offset) for m in scanner.feed(piece)]
        base += len(piece)
    return found


def test_marks_do_not_depend_on_how_the_stream_is_split() -> None:
    whole = absolute_marks([STREAM])
    kinds = [kind for kind, _ in whole]
    assert kinds.count(MarkKind.EVENT_END) == 4  # the comment-only block is not an event
    assert kinds.count(MarkKind.MESSAGE_END) == 2
    assert whole[-1] == (MarkKind.MESSAGE_END, len(STREAM))
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(STREAM)), 12))
        pieces = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert absolute_marks(pieces) == whole
    assert absolute_marks([bytes([b]) for b in STREAM]) == whole


def test_request_without_body_ends_at_its_head() -> None:
    request = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
    post = b"POST /v1/completions HTTP/1.1\r\ncontent-length: 4\r\n\r\nabcd"
    marks = MessageScanner(requests=True).feed(request + post)
    assert [(m.kind, m.offset) for m in marks] == [
        (MarkKind.HEAD_END, len(request)), (MarkKind.MESSAGE_END, len(request)),
        (MarkKind.HEAD_END, len(request) + len(post) - 4),
        (MarkKind.MESSAGE_END, len(request) + len(post))]


# Regressions found by tests/conformance/test_fuzz.py: each used to raise ValueError
# inside the toxic's pipe task or, for the chunk-size line, buffered without bound.
SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n")


def test_a_chunk_size_that_is_not_hex_stops_interpreting() -> None:
    for size_line in (b"zz\r\n", b"\xb2\r\n", b"-5\r\n", b"+5\r\n", b"1" * 17 + b"\r\n"):
        scanner = MessageScanner(requests=False)
        marks = scanner.feed(SSE_HEAD + size_line + b"data: 1\n\n")
        assert [m.kind for m in marks] == [MarkKind.HEAD_END], size_line
        assert scanner.feed(b"data: 2\n\n0\r\n\r\n") == []  # passed through, unscanned


def test_non_ascii_digits_are_not_lengths_or_statuses() -> None:
    marks = MessageScanner(requests=True).feed(
        b"POST / HTTP/1.1\r\ncontent-length: \xb2\r\n\r\n")
    assert [m.kind for m in marks] == [MarkKind.HEAD_END, MarkKind.MESSAGE_END]
    head_end = MessageScanner(requests=False).feed(b"HTTP/1.1 \xb2\xb2\xb2 X\r\n\r\n")[0]
    assert head_end.head is not None and head_end.head.status == 0
