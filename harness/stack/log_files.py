"""The last lines of a component's log file, read from its end.

A node's log grows to megabytes over a session (one line per request, tracebacks at
each shutdown); a drill that watches it for a moment (the node took a request) reads
it every few tens of milliseconds, so only its tail is read, never the whole file.
"""

from __future__ import annotations

import os
from pathlib import Path

BLOCK = 16 * 1024
NO_LOG = "(no log)"


def tail_of(path: Path, lines: int) -> str:
    """The file's last ``lines`` lines (fewer if it has fewer), without the trailing
    newline; ``(no log)`` when it cannot be read."""
    try:
        with path.open("rb") as handle:
            data = _last_lines(handle.fileno(), lines)
    except OSError:
        return NO_LOG
    return data.decode(errors="replace").rstrip()


def _last_lines(fd: int, lines: int) -> bytes:
    """Read blocks backwards from the end until ``lines`` + 1 line breaks are in hand."""
    if lines <= 0:
        return b""
    start = os.fstat(fd).st_size
    blocks: list[bytes] = []
    breaks = 0
    while start > 0 and breaks <= lines:
        size = min(BLOCK, start)
        start -= size
        block = os.pread(fd, size, start)
        blocks.append(block)
        breaks += block.count(b"\n")
    data = b"".join(reversed(blocks))
    body = data[:-1] if data.endswith(b"\n") else data
    return b"\n".join(body.split(b"\n")[-lines:])
