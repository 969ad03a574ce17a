"""One game day per stack at a time: a second one against the same front door is refused
before it starts anything, never interleaved with the first.

The claim is a Linux abstract Unix socket named after the stack's front door: bound
while the game day's process lives, released by the kernel when it ends however it ends
(SIGKILL included), and it leaves no file behind.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import HarnessError

PREFIX = "llm-drill-gameday:"


class GameDayRunning(HarnessError):
    """Another game day holds the stack."""


@contextmanager
def one_game_day_per_stack(front_door_url: str) -> Iterator[None]:
    """Hold the stack at ``front_door_url`` for this game day; GameDayRunning if another
    game day (in any process of this host) holds it."""
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind("\0" + PREFIX + front_door_url.rstrip("/"))
    except OSError as exc:
        claim.close()
        raise GameDayRunning(f"another game day is running against the stack at "
                             f"{front_door_url}: refused, so the two never interleave "
                             "(wait for it to end, or pick another stack)") from exc
    try:
        yield
    finally:
        claim.close()
