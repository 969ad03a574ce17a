"""``harness.load.__all__`` is exactly its public surface."""

from __future__ import annotations

import types

import harness.load


def test_all_matches_the_public_names() -> None:
    public = {name for name, value in vars(harness.load).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and name != "annotations"}
    assert set(harness.load.__all__) == public
