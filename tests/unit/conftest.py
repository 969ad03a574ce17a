"""Fixtures for the unit tests (helpers live in tests/fakes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.observe import Observer, PrometheusClient, WebhookClient
from tests.fakes import FakeClock, FakePrometheus


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def prom() -> FakePrometheus:
    return FakePrometheus()


@pytest.fixture
def http(prom: FakePrometheus) -> Iterator[httpx.Client]:
    with prom.client() as client:
        yield client


@pytest.fixture
def observer(http: httpx.Client, clock: FakeClock) -> Observer:
    return Observer(PrometheusClient("http://prom:9090", http),
                    WebhookClient("http://hook:9094", http), clock=clock,
                    wall=clock.wall)
