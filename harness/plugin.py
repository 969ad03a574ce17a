"""The llm-drill pytest plugin: options, markers, and the session ``stack`` fixture.

Heavy modules are imported inside hooks and fixtures so that ``pytest tests/``
without the stack stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.drill.config import DrillsConfig
    from harness.stack.stack import Stack

STACK_MARKER = "stack"

_OPTIONS: tuple[tuple[str, str, str], ...] = (
    # (flag, ini name, help)
    ("--stack-file", "llm_drill_stack_file", "topology file (default compose/stack.yaml)"),
    ("--stack-url", "llm_drill_stack_url",
     "attach to a stack that is already up at this front-door URL instead of starting one"),
    ("--llm-drill-home", "llm_drill_home",
     "where run directories live (default $LLM_DRILL_HOME or ./.llm-drill)"),
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


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(name) or config.getini(name)
    return str(value) if value else ""


def _no_stack(config: pytest.Config) -> bool:
    return bool(config.getoption("llm_drill_no_stack") or config.getini("llm_drill_no_stack"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _no_stack(config):
        return
    skip = pytest.mark.skip(reason="needs the real stack (--no-stack given)")
    for item in items:
        if item.get_closest_marker(STACK_MARKER):
            item.add_marker(skip)


def _stack_file(config: pytest.Config) -> Path:
    from harness.topology import DEFAULT_STACK_FILE

    given = _setting(config, "llm_drill_stack_file")
    return Path(given).resolve() if given else DEFAULT_STACK_FILE


def _home(config: pytest.Config) -> Path:
    from harness.stack.runstate import default_home

    given = _setting(config, "llm_drill_home")
    return Path(given).resolve() if given else default_home()


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The real stack: started once per session (or attached with --stack-url)."""
    config = request.config
    url = _setting(config, "llm_drill_stack_url")
    handle = _attach(config, url) if url else _start(config)
    config.hook.pytest_llm_drill_stack_ready(stack=handle)
    try:
        yield handle
    finally:
        config.hook.pytest_llm_drill_stack_teardown(stack=handle)
        if url:
            handle.close()
        else:
            left = handle.down()
            assert left.clean, f"residue after teardown: {left}"


@pytest.fixture(scope="session")
def drills_config(request: pytest.FixtureRequest) -> DrillsConfig:
    """drills/drills.yaml with this run's --drill-set overrides."""
    from harness.drill.config import load_drills_config

    sets = [*request.config.getini("llm_drill_set"), *request.config.getoption("llm_drill_set")]
    return load_drills_config(sets=sets)


def _start(config: pytest.Config) -> Stack:
    from harness.stack.reaper import reap_stale
    from harness.stack.stack import create_stack

    home = _home(config)
    reap_stale(home)
    handle = create_stack(_stack_file(config), home=home, owned_by_me=True)
    handle.runtime.up()
    return handle


def _attach(config: pytest.Config, url: str) -> Stack:
    import httpx

    from harness.errors import Unreachable
    from harness.stack.external import ExternalRuntime
    from harness.stack.runstate import current_run_dir
    from harness.stack.stack import Stack, attach_stack
    from harness.topology import load_topology

    try:
        httpx.get(f"{url.rstrip('/')}/readiness", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        raise Unreachable(f"{url}/readiness", "the front door to answer 200", str(exc)) from exc
    run_dir = current_run_dir(_home(config))
    if run_dir is not None:
        return attach_stack(run_dir, _stack_file(config))
    topology = load_topology(_stack_file(config))
    return Stack(topology, ExternalRuntime(topology), _home(config), "external")
