"""The llm-drill pytest plugin: options, markers, the session ``stack`` fixture, and the
INCONCLUSIVE outcome.

A drill that cannot prove its fault took effect, or whose precondition does not hold,
raises :class:`~harness.errors.Inconclusive`. Its report is shown as ``INCONCLUSIVE``
(letter ``I``) in its own category, listed with what it saw at the end of the session,
and never counted as passed: underneath it stays a failed report, so the session's exit
code is non-zero.

Heavy modules are imported inside hooks and fixtures so that ``pytest tests/``
without the stack stays fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.errors import Inconclusive

if TYPE_CHECKING:
    from harness.load.sinks import LoadExporter
    from harness.stack.stack import Stack

STACK_MARKER = "stack"
INCONCLUSIVE = "inconclusive"
_INCONCLUSIVE_ATTR = "llm_drill_inconclusive"  # set on a report: what could not be proven

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    # (flag, ini name, help)
    ("--stack-file", "llm_drill_stack_file", "topology file (default harness/defaults/stack.yaml)"),
    ("--stack-url", "llm_drill_stack_url",
     "attach to a stack that is already up at this front-door URL instead of starting one"),
    ("--llm-drill-home", "llm_drill_home",
     "where run directories live (default $LLM_DRILL_HOME or ./.llm-drill)"),
    ("--compose-project", "llm_drill_compose_project",
     "attach to the running containers of this compose project (by their llm-drill.component "
     "label, else their service name) instead of starting a stack"),
    ("--runtime", "llm_drill_runtime",
     "where the session's stack runs: process (default) or container (a Docker-API engine: "
     "DOCKER_HOST, else `llm-drill engine start`)"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llm-drill", "llm-drill failure drills")
    for flag, ini, text in _OPTIONS:
        group.addoption(flag, dest=ini, default=None, help=f"{text} [ini: {ini}]")
        parser.addini(ini, text, default="")
    group.addoption("--drill-set", dest="llm_drill_set", action="append", default=[],
                    metavar="SECTION.FIELD=VALUE",
                    help="override one drills/drills.yaml value [ini: llm_drill_set]")
    parser.addini("llm_drill_set", "overrides of drills/drills.yaml values", type="linelist",
                  default=[])
    group.addoption("--no-stack", dest="llm_drill_no_stack", action="store_true",
                    help="skip tests that need the real stack [ini: llm_drill_no_stack]")
    parser.addini("llm_drill_no_stack", "skip tests that need the real stack", type="bool",
                  default=False)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from harness import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{STACK_MARKER}: needs the real llm-drill stack (started once per session)")
    config.addinivalue_line("markers", "drill: a failure drill from the catalogue")
    if _no_stack(config) and _setting(config, "llm_drill_stack_url"):
        raise pytest.UsageError("--no-stack and --stack-url contradict each other: pick one")
    if _setting(config, "llm_drill_stack_url") and _setting(config, "llm_drill_compose_project"):
        raise pytest.UsageError("--stack-url and --compose-project both attach: pick one")


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(name) or config.getini(name)
    return str(value) if value else ""


def drill_home(config: pytest.Config) -> Path:
    """The session's llm-drill home (``--llm-drill-home``, its ini, ``$LLM_DRILL_HOME``,
    else ``./.llm-drill``): runs, history and reports live under it."""
    from harness.runs import default_home

    return default_home(_setting(config, "llm_drill_home"))


def _no_stack(config: pytest.Config) -> bool:
    return bool(config.getoption("llm_drill_no_stack") or config.getini("llm_drill_no_stack"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _no_stack(config):
        return
    skip = pytest.mark.skip(reason="needs the real stack (--no-stack given)")
    for item in items:
        if item.get_closest_marker(STACK_MARKER):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    """A phase that raised Inconclusive stays a failure underneath (exit code non-zero),
    marked so that it is shown as INCONCLUSIVE, with what it saw instead of a traceback."""
    report = yield
    excinfo = call.excinfo
    if (isinstance(report, pytest.TestReport) and excinfo is not None
            and isinstance(excinfo.value, Inconclusive)):
        setattr(report, _INCONCLUSIVE_ATTR, str(excinfo.value))
        report.longrepr = f"INCONCLUSIVE: {excinfo.value}"
    return report


_Status = tuple[str, str, tuple[str, dict[str, bool]]]  # category, letter, (word, markup)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> _Status | None:
    if getattr(report, _INCONCLUSIVE_ATTR, None) is None:
        return None
    return INCONCLUSIVE, "I", ("INCONCLUSIVE", {"yellow": True})


# -- history: every drill run of the session, recorded as soon as its test is over ---------
_HISTORY_RUN_DIR = pytest.StashKey[Path]()
_HISTORY_LINE = pytest.StashKey[str]()


def record_history_of(config: pytest.Config, run_dir: Path) -> None:
    """Record the journals of ``run_dir`` into the history after each test (the stack
    fixture calls this; journals stay the truth, so a run is recorded at most once)."""
    config.stash[_HISTORY_RUN_DIR] = run_dir


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """After a test (and the fixtures it tears down), its drills' journals are written:
    record them, so the history keeps them even if the session dies later."""
    try:
        return (yield)
    finally:
        _record_history(item.config)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Once more at the end: a drill interrupted mid-test (Ctrl-C, a game day's abort)
    writes its journal as it unwinds, but pytest then skips that test's teardown hooks."""
    _record_history(session.config)


def _record_history(config: pytest.Config) -> None:
    run_dir = config.stash.get(_HISTORY_RUN_DIR, None)
    if run_dir is None:  # no stack in this session: nothing to import, not even modules
        return
    import sqlite3

    from harness.errors import HarnessError
    from harness.history.meta import ensure_meta
    from harness.history.schema import db_path
    from harness.history.store import import_runs, journal_paths
    from harness.runs import default_home

    if not journal_paths(run_dir):
        return
    db_file = db_path(default_home(_setting(config, "llm_drill_home")))
    try:
        ensure_meta(run_dir)
        import_runs(db_file, [run_dir])
    except (HarnessError, OSError, sqlite3.Error) as exc:
        config.stash[_HISTORY_LINE] = (f"llm-drill history: not recorded ({exc}); "
                                       f"`llm-drill history import {run_dir}` will")
        return
    config.stash[_HISTORY_LINE] = f"llm-drill history: {db_file} (`llm-drill history`)"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            exitstatus: int, config: pytest.Config) -> None:
    history = config.stash.get(_HISTORY_LINE, None)
    if history is not None:
        terminalreporter.write_line(history)
    reports = terminalreporter.stats.get(INCONCLUSIVE, [])
    if not reports:
        return
    terminalreporter.section("inconclusive drills (neither passed nor failed)", sep="=",
                             yellow=True)
    for report in reports:
        terminalreporter.line(f"INCONCLUSIVE {report.nodeid} - "
                              f"{getattr(report, _INCONCLUSIVE_ATTR, '')}")


def _stack_file(config: pytest.Config) -> Path:
    from harness.topology import DEFAULT_STACK_FILE

    given = _setting(config, "llm_drill_stack_file")
    return Path(given).resolve() if given else DEFAULT_STACK_FILE


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The real stack: started once per session (or attached with --stack-url)."""
    config = request.config
    url = _setting(config, "llm_drill_stack_url")
    project = _setting(config, "llm_drill_compose_project")
    attached = bool(url or project)
    with contextlib.ExitStack() as engine:
        if not attached and _runtime(config) == "container":
            from harness.stack.engine import session_engine

            engine.enter_context(session_engine(drill_home(config)))
        handle = (_attach(config, url) if url else _attach_compose(config, project) if project
                  else _start(config))
        record_history_of(config, handle.run_dir)
        config.hook.pytest_llm_drill_stack_ready(stack=handle)
        try:
            yield handle
        finally:
            config.hook.pytest_llm_drill_stack_teardown(stack=handle)
            if attached:
                handle.close()
            else:
                left = handle.down()
                assert left.clean, f"residue after teardown: {left}"


@pytest.fixture(scope="session")
def load_exporter(stack: Stack) -> Iterator[LoadExporter]:
    """Client-side metrics (what users feel), served on the topology's exporter port for
    the stack's Prometheus: one per session, shared by drills and the breakage tests."""
    from harness.load.sinks import LoadExporter

    exporter = LoadExporter()
    with exporter.serve(stack.topology.load_exporter.port, stack.topology.host):
        yield exporter


@pytest.fixture(scope="session")
def drill_overrides(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """This run's ``section.field=value`` overrides of the drill catalogue's config (ini
    ``llm_drill_set`` first, then ``--drill-set``). A catalogue's conftest loads its config
    with them: ``load_drill_config(path, Schema, drill_overrides)``."""
    config = request.config
    return (*config.getini("llm_drill_set"), *config.getoption("llm_drill_set"))


def _runtime(config: pytest.Config) -> str:
    return _setting(config, "llm_drill_runtime") or "process"


def _start(config: pytest.Config) -> Stack:
    from harness.runs import default_home
    from harness.stack.reaper import reap_stale
    from harness.stack.stack import create_stack

    home = default_home(_setting(config, "llm_drill_home"))
    reap_stale(home)
    handle = create_stack(_stack_file(config), home=home, owned_by_me=True,
                          runtime=_runtime(config))
    handle.up()
    return handle


def _attach_compose(config: pytest.Config, project: str) -> Stack:
    from harness.stack.stack import attach_compose

    return attach_compose(project, _stack_file(config), home=drill_home(config))


def _attach(config: pytest.Config, url: str) -> Stack:
    import httpx

    from harness.errors import Unreachable
    from harness.runs import current_run_dir, default_home
    from harness.stack.external import ExternalRuntime
    from harness.stack.stack import Stack, attach_stack
    from harness.topology import load_topology

    try:
        httpx.get(f"{url.rstrip('/')}/readiness", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        raise Unreachable(f"{url}/readiness", "the front door to answer 200", str(exc)) from exc
    home = default_home(_setting(config, "llm_drill_home"))
    run_dir = current_run_dir(home)
    if run_dir is not None:
        return attach_stack(run_dir, _stack_file(config))
    topology = load_topology(_stack_file(config))
    return Stack(topology, ExternalRuntime(topology), home, "external")
