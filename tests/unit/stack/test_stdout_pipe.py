"""The wrapper widens the pipe a supervised program writes its log to: HAProxy drops each
line a full pipe has no room for."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from harness.stack.groupwrap import widen_stdout_pipe

MIB = 1024 * 1024


def test_a_pipe_is_widened_past_the_kernel_default() -> None:
    read, write = os.pipe()
    try:
        before = fcntl.fcntl(write, fcntl.F_GETPIPE_SZ)

        size = widen_stdout_pipe(write, 4 * MIB)

        assert before < MIB <= fcntl.fcntl(write, fcntl.F_GETPIPE_SZ) == size
    finally:
        os.close(read)
        os.close(write)


def test_a_file_is_left_alone(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as log:
        assert widen_stdout_pipe(log.fileno()) is None
