"""Fixtures every drill shares: the client-side exporter, a drill-run factory, the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from harness.drill.config import DrillsConfig
from harness.drill.run import DrillRun
from harness.load import LoadExporter
from harness.stack.stack import Stack

pytestmark = [pytest.mark.stack, pytest.mark.drill]

StartDrill = Callable[[str], AbstractContextManager[DrillRun]]


@pytest.fixture(scope="session")
def load_exporter(stack: Stack) -> Iterator[LoadExporter]:
    """Client-side metrics (what users feel), scraped by the stack's Prometheus."""
    exporter = LoadExporter()
    with exporter.serve(stack.topology.load_exporter.port, stack.topology.host):
        yield exporter


@pytest.fixture
def start_drill(stack: Stack, drills_config: DrillsConfig,
                load_exporter: LoadExporter) -> StartDrill:
    """``with start_drill("name") as drill:`` records the drill and writes its journal."""
    def start(name: str) -> DrillRun:
        return DrillRun.open(name, stack, drills_config, load_exporter)
    return start


@pytest.fixture(scope="session", autouse=True)
def drill_report(stack: Stack) -> Iterator[None]:
    """After the drills: the HTML report and runbooks filled from the journals."""
    yield
    from harness.report.evidence import write_runbooks
    from harness.report.html import build_report

    if (stack.run_dir / "journals").is_dir():
        print(f"\nllm-drill report: {build_report(stack.run_dir)}")
        print(f"llm-drill runbooks: {write_runbooks(stack.run_dir)}")
