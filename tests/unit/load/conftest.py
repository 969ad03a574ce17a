"""Fixtures for the load generator's unit tests (helpers live in loadfakes.py; the
``clock`` fixture, the shared FakeClock, comes from tests/unit/conftest.py)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeClock
from tests.unit.load.loadfakes import FakeServer


@pytest.fixture
def server(clock: FakeClock) -> FakeServer:
    return FakeServer(clock)
