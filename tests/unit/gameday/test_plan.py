"""Game-day plans: decoded with file, line and field on error; overrides merged into one
session; hosts outside ``targets`` refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.gameday.plan import check_targets, line_of, load_plan, plan_topology, stack_hosts

PLAN = """\
name: weekly
targets: [127.0.0.1]
drills:
  - select: test_cancel_storm.py
    overrides: {cancel_storm.waves: 2}
  - select: test_node_restart.py::test_node_restart[sigkill]
    overrides: {node_restart.streams: 4}
    expected_alerts: [NodeDown]
abort: {error_ratio: 0.5, ttft_p95_s: 10, for_s: 30}
"""


def plan_file(tmp_path: Path, text: str = PLAN) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_a_plan_runs_its_overrides_in_one_session(tmp_path: Path) -> None:
    loaded = load_plan(plan_file(tmp_path))
    assert loaded.drill_sets() == ("cancel_storm.waves=2", "node_restart.streams=4")
    assert loaded.expected_alerts() == {"NodeDown"}
    assert loaded.drills_dir == (tmp_path / "drills").resolve()


def test_two_drills_setting_one_field_differently_name_the_line(tmp_path: Path) -> None:
    text = PLAN.replace("node_restart.streams: 4", "cancel_storm.waves: 3")
    with pytest.raises(ConfigError) as caught:
        load_plan(plan_file(tmp_path, text))
    assert caught.value.line == 7
    assert caught.value.field == "drills[1].overrides.cancel_storm.waves"
    assert "drills[0] to 2" in str(caught.value)


@pytest.mark.parametrize(("edit", "line", "field"), [
    (("ttft_p95_s: 10", "ttft_p95_s: -1"), 9, "abort"),
    (("select: test_cancel_storm.py", "select: ../elsewhere.py"), 4, "drills[0]"),
    (("name: weekly", "name: weekly\ncolour: red"), 2, "colour"),
    (("    overrides: {cancel_storm.waves: 2}\n", "    overrides: {waves: 2}\n"), 4,
     "drills[0]"),
])
def test_a_malformed_plan_names_file_line_and_field(tmp_path: Path, edit: tuple[str, str],
                                                    line: int, field: str) -> None:
    path = plan_file(tmp_path, PLAN.replace(*edit))
    with pytest.raises(ConfigError) as caught:
        load_plan(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), line,
                                                                         field)


def test_a_host_outside_the_targets_is_refused(tmp_path: Path) -> None:
    loaded = load_plan(plan_file(tmp_path, PLAN.replace("[127.0.0.1]", "[10.0.0.9]")))
    with pytest.raises(ConfigError, match=r"not in targets: 127\.0\.0\.1 \(every component"):
        check_targets(loaded, stack_hosts(loaded, plan_topology(loaded)))


def test_an_attached_front_door_is_a_host_the_targets_must_name(tmp_path: Path) -> None:
    text = PLAN + "stack: {attach: 'http://10.1.2.3:18080'}\n"
    loaded = load_plan(plan_file(tmp_path, text))
    hosts = stack_hosts(loaded, plan_topology(loaded))
    with pytest.raises(ConfigError, match=r"10\.1\.2\.3 \(the attached front door") as caught:
        check_targets(loaded, hosts)
    assert caught.value.line == 2
    check_targets(load_plan(plan_file(tmp_path, text.replace(
        "[127.0.0.1]", "[127.0.0.1, 10.1.2.3]"))), hosts)


def test_line_of_walks_mappings_and_lists(tmp_path: Path) -> None:
    path = plan_file(tmp_path)
    assert line_of(path, ["drills", 1, "expected_alerts"]) == 8
    assert line_of(path, ["drills", 5]) is None
    assert line_of(tmp_path / "absent.yaml", ["name"]) is None
