"""Fixtures for the load generator's unit tests (helpers live in loadfakes.py)."""

from __future__ import annotations

import pytest

from harness.load import FakeClock
from tests.unit.load.loadfakes import FakeServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(clock: FakeClock) -> FakeServer:
    return FakeServer(clock)
