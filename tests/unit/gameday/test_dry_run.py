"""``llm-drill gameday run PLAN --dry-run``: every drill resolved by pytest's own
collection, every host checked, the session printed; nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.gameday.collect import node_ids, resolve
from harness.gameday.plan import load_plan

DRILLS = '''\
import pytest


def test_storm() -> None:
    pass


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_restart(how: str) -> None:
    pass
'''
PLAN = """\
name: smoke
targets: [127.0.0.1]
drills:
  - select: test_tiny.py::test_restart
    overrides: {node_restart.streams: 4}
    expected_alerts: [NodeDown]
  - select: test_tiny.py::test_storm
abort: {error_ratio: 0.5, ttft_p95_s: 10, for_s: 30}
"""


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "drills").mkdir()
    (tmp_path / "drills" / "test_tiny.py").write_text(DRILLS)
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_selections_resolve_to_the_tests_pytest_collects(plan: Path) -> None:
    found = resolve(load_plan(plan))
    assert [c.node_ids for c in found] == [
        ("drills/test_tiny.py::test_restart[sigkill]",
         "drills/test_tiny.py::test_restart[sigterm]"),
        ("drills/test_tiny.py::test_storm",)]


def test_an_unknown_drill_names_its_line_and_lists_the_known_ones(plan: Path) -> None:
    plan.write_text(PLAN.replace("test_tiny.py::test_storm", "test_tiny.py::test_typo"))
    with pytest.raises(ConfigError) as caught:
        resolve(load_plan(plan))
    assert (caught.value.line, caught.value.field) == (7, "drills[1].select")
    assert "known: test_tiny.py::test_storm, test_tiny.py::test_restart[sigkill]" in str(
        caught.value)


def test_the_dry_run_prints_the_session_and_starts_nothing(
        plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    assert main(["--home", str(home), "gameday", "run", str(plan), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs drills/test_tiny.py::test_restart[sigterm]" in out
    assert "--drill-set node_restart.streams=4" in out
    assert "a critical alert other than NodeDown" in out
    assert out.rstrip().endswith("dry run: nothing started, nothing touched")
    assert not home.exists()


def test_a_target_outside_the_allow_list_is_refused_before_anything(
        plan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan.write_text(PLAN.replace("[127.0.0.1]", "[10.9.9.9]"))
    assert main(["--home", str(tmp_path / "home"), "gameday", "run", str(plan)]) != 0
    assert f"{plan}:2 [targets]: not in targets: 127.0.0.1" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()


def test_collect_output_is_read_for_test_ids_only() -> None:
    text = "drills/a.py::test_x\ndrills/a.py::test_y[1]\n\n2 tests collected in 0.01s\n"
    assert node_ids(text) == ("drills/a.py::test_x", "drills/a.py::test_y[1]")
