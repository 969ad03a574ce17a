"""Fixtures every drill shares (the catalogue's config, a drill-run factory, the report)
and the markers every drill carries. The client-side exporter comes from the plugin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drills.catalogue import Drill, DrillsConfig, StartDrill, load_catalogue
from harness.drill import DrillRun, LoadExporter, Stack
from harness.drill.journal import junit_properties, read_journal
from harness.plugin import drill_home

HERE = Path(__file__).resolve().parent

# pytest ignores ``pytestmark`` in a conftest: the hook below applies these instead.
DRILL_MARKERS = (pytest.mark.stack, pytest.mark.drill)


def is_drill(item: pytest.Item) -> bool:
    return item.path.is_relative_to(HERE)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under drills/ needs the stack and is a drill, so that ``--no-stack``
    skips it and ``-m drill`` selects it (before either looks at the markers)."""
    for item in filter(is_drill, items):
        for marker in DRILL_MARKERS:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def drills_config(drill_overrides: tuple[str, ...]) -> DrillsConfig:
    """drills/drills.yaml with this run's --drill-set overrides."""
    return load_catalogue(drill_overrides)


@pytest.fixture
def start_drill(stack: Stack, drills_config: DrillsConfig, load_exporter: LoadExporter,
                request: pytest.FixtureRequest) -> Iterator[StartDrill]:
    """``with start_drill("name") as drill:`` records the drill and writes its journal;
    its outcome, verdicts and measurements become the test's JUnit XML properties."""
    opened: list[Drill] = []

    def start(name: str) -> Drill:
        drill = DrillRun.open(name, stack, drills_config, load_exporter)
        opened.append(drill)
        return drill
    yield start
    for drill in opened:
        if drill.journal_path().is_file():
            request.node.user_properties.extend(
                junit_properties(read_journal(drill.journal_path())))


REPORT_LINES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session", autouse=True)
def drill_report(stack: Stack, request: pytest.FixtureRequest) -> Iterator[None]:
    """After the drills: the HTML report (with each drill's trend over its recorded
    runs), the runbooks filled from the history (the
    last runs of each drill; this run's journals when there is no history) and the
    findings of the drills that did not pass; their paths close pytest's output (a
    print here would be captured and never shown)."""
    yield
    from harness.report.evidence import write_runbooks
    from harness.report.findings import write_findings
    from harness.report.html import build_report

    if (stack.run_dir / "journals").is_dir():
        home = drill_home(request.config)
        report = build_report(stack.run_dir, home=home)  # first: the runbooks link to it
        runbooks = write_runbooks(stack.run_dir, home=home)
        findings = write_findings(stack.run_dir)
        request.config.stash[REPORT_LINES] = [
            f"llm-drill report: {report}",
            f"llm-drill runbooks: {runbooks[0].parent if runbooks else '(none)'}",
            *([f"llm-drill findings: {findings}"] if findings else []),
        ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    for line in config.stash.get(REPORT_LINES, []):
        terminalreporter.write_line(line)
