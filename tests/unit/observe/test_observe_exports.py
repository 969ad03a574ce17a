"""__all__ of harness.observe is exactly its public surface."""

from __future__ import annotations

import harness.observe


def test_all_lists_every_public_name() -> None:
    public = {n for n in vars(harness.observe) if not n.startswith("_")}
    modules = {"alerts", "kv", "metrics", "prom", "recovery", "rules", "timeline", "webhook",
               "annotations"}
    assert set(harness.observe.__all__) == public - modules
