"""``harness.observe.__all__`` is exactly its public surface."""

from __future__ import annotations

import types

import harness.observe


def test_all_lists_every_public_name() -> None:
    public = {name for name, value in vars(harness.observe).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and name != "annotations"}
    assert set(harness.observe.__all__) == public
