"""Breakage tests: every drill must be able to fail. Each test breaks the real stack in
one way, runs a drill on it and expects the drill to fail naming the broken property;
first it proves the positive control (the same drill passed on the healthy stack in
this session). They run after every other test of the session, so that the drills of
``pytest tests/ drills/`` are their controls and each breakage meets a healthy stack."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drills.catalogue import DrillsConfig, load_catalogue
from harness.drill import LoadExporter, Stack
from tests.breakage.sensitivity import Sensitivity

HERE = Path(__file__).resolve().parent
# Collection happens before any test runs: a journal written after this is this session's.
COLLECTED_AT = time.time()


def _is_breakage(item: pytest.Item) -> bool:
    return item.path.is_relative_to(HERE)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Breakage tests need the stack, and run last (a stable sort keeps their order)."""
    for item in filter(_is_breakage, items):
        item.add_marker(pytest.mark.stack)
    items.sort(key=_is_breakage)


@pytest.fixture(scope="session")
def drills_config(drill_overrides: tuple[str, ...]) -> DrillsConfig:
    """The shipped catalogue's config, as drills/conftest.py gives it to the drills."""
    return load_catalogue(drill_overrides)


@pytest.fixture
def sensitivity(stack: Stack, drills_config: DrillsConfig, load_exporter: LoadExporter,
                request: pytest.FixtureRequest) -> Sensitivity:
    return Sensitivity(stack, drills_config, load_exporter, COLLECTED_AT,
                       request.node.name.removeprefix("test_"))
