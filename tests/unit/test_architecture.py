"""Imports run one way: down the floors drawn in docs/architecture.md.

A module may import from its own package and from any package on a lower floor;
never from a higher floor, nor from another package on its own floor. Imports inside
functions count too: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# Bottom up. Keep in step with the picture in docs/architecture.md.
FLOORS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "files", "clock", "auth", "vllm_plugins"}),
    frozenset({"service"}),
    frozenset({"config", "waits", "runs", "manual", "toxiproxy", "webhook"}),
    frozenset({"topology"}),
    frozenset({"clients", "render", "load"}),
    frozenset({"stack", "observe", "rollout"}),
    frozenset({"faults"}),
    frozenset({"drill"}),
    frozenset({"history"}),
    frozenset({"report"}),
    frozenset({"gameday"}),
    frozenset({"hookspecs"}),
    frozenset({"plugin", "cli"}),
)


def floor_of(unit: str) -> int:
    for level, units in enumerate(FLOORS):
        if unit in units:
            return level
    raise AssertionError(f"harness.{unit} is on no floor: add it to FLOORS and the docs")


def unit_of(module: str) -> str:
    """``harness.stack.stack`` -> ``stack``; ``harness`` itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path) -> str:
    rel = path.relative_to(HARNESS.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imported_modules(module: str, text: str, *, is_package: bool = False) -> set[str]:
    tree = ast.parse(text)
    here = module.split(".")
    package = here if is_package else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if target == "harness")
    return {m for m in found if m == "harness" or m.startswith("harness.")}


def back_arrows(module: str, text: str, *, is_package: bool = False) -> list[str]:
    source = unit_of(module)
    if not source:
        return []
    level = floor_of(source)
    wrong = []
    for target in sorted(imported_modules(module, text, is_package=is_package)):
        unit = unit_of(target)
        if unit in ("", source):
            continue
        other = floor_of(unit)
        if other > level or (other == level and unit != source):
            wrong.append(f"{module} -> {target} (floor {level} -> {other})")
    return wrong


MODULES = sorted(HARNESS.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_run_down_the_floors(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert back_arrows(module_name(path), text, is_package=path.name == "__init__.py") == []


def test_every_package_has_a_floor() -> None:
    units = {unit_of(module_name(p)) for p in MODULES} - {""}
    for unit in units:
        floor_of(unit)


def test_a_back_arrow_is_caught() -> None:
    """The check itself can fail: a stack module importing a fault is reported."""
    text = "from harness.faults.process import KillProcess\n"
    assert back_arrows("harness.stack.probe", text) == [
        "harness.stack.probe -> harness.faults.process (floor 5 -> 6)"]


def test_a_lazy_import_of_a_peer_is_caught() -> None:
    text = "def f() -> None:\n    from harness.observe import alerts\n"
    assert back_arrows("harness.stack.probe", text) == [
        "harness.stack.probe -> harness.observe (floor 5 -> 5)"]


def test_relative_imports_resolve_to_their_package() -> None:
    text = "from .state import State\nfrom ..errors import HarnessError\n"
    assert imported_modules("harness.toxiproxy", text, is_package=True) == {
        "harness.toxiproxy.state", "harness.errors"}
