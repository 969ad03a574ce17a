"""Hooks llm-drill adds to pytest (registered through ``pytest_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.stack.stack import Stack


@pytest.hookspec(firstresult=False)
def pytest_llm_drill_stack_ready(stack: Stack) -> None:
    """Called once the session's stack is up (or attached), before any test uses it."""


@pytest.hookspec(firstresult=False)
def pytest_llm_drill_stack_teardown(stack: Stack) -> None:
    """Called before the session's stack is torn down."""
