"""``harness.report.__all__`` is exactly its public surface, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys
import types

import harness.report


def test_all_matches_the_public_names() -> None:
    public = {name for name, value in vars(harness.report).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and name != "annotations"}
    assert set(harness.report.__all__) == public


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = "import sys, harness.report, harness.report.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
