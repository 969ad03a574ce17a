"""What the integration tests on the real container engine share: the project's own
daemon, started for a module and stopped after, with nothing mounted left."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.runs import default_home
from harness.stack.engine import (
    EngineFiles,
    engine_files,
    mounts_under,
    start_daemon,
    stop_daemon,
)


@pytest.fixture(scope="module")
def engine() -> Iterator[EngineFiles]:
    """The project's daemon in the llm-drill home, as `llm-drill engine start` runs it."""
    files = engine_files(default_home())
    start_daemon(files)
    try:
        yield files
    finally:
        stop_daemon(files)
    assert mounts_under(files.root) == [], "the daemon left mounts behind"
