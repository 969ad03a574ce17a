"""``harness.drill`` is the drill author's front door: ``__all__`` is exactly its public
surface, and every fault class the library defines can be imported from it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import harness.drill
import harness.faults
from harness.faults.base import FaultBase


def test_all_matches_the_public_names() -> None:
    public = {name for name, value in vars(harness.drill).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and name != "annotations"}
    assert set(harness.drill.__all__) == public


def fault_classes() -> set[str]:
    """Every public concrete fault class defined in a module of harness.faults."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(harness.faults.__path__, "harness.faults."):
        module = importlib.import_module(info.name)
        found.update(name for name, value in vars(module).items()
                     if inspect.isclass(value) and issubclass(value, FaultBase)
                     and value.__module__ == module.__name__ and not name.startswith("_"))
    return found


def test_every_fault_class_is_at_the_front_door() -> None:
    faults = fault_classes()
    assert {"Latency", "KillProcess", "OOMKillNode", "ProxyDisabled"} <= faults
    assert faults - set(harness.drill.__all__) == set()
