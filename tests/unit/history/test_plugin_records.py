"""A pytest session records its drills' journals into the history after each test."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from harness.plugin import record_history_of
from tests.unit.history.runs import journal, write_run

RUN_ID = "20260101-000000-abcdef"

@pytest.fixture(scope="session")
def fake_stack(request):
    home = request.config.getoption("llm_drill_home")
    from pathlib import Path
    run_dir = Path(home) / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    record_history_of(request.config, run_dir)
    return run_dir

@pytest.fixture
def drill(fake_stack):
    def write(name):
        write_run(fake_stack.parent.parent, RUN_ID, journal(name, RUN_ID))
    return write
"""

TESTS = """
import sqlite3
from pathlib import Path

def test_first(drill):
    drill("node_kill")

def test_second_sees_the_first_recorded(drill, request):
    db = Path(request.config.getoption("llm_drill_home")) / "history.sqlite3"
    rows = sqlite3.connect(db).execute("SELECT drill FROM drill_runs").fetchall()
    assert rows == [("node_kill",)]
    drill("cancel_storm")
"""


def test_each_drill_is_recorded_after_its_test(pytester: pytest.Pytester,
                                               tmp_path: Path) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_drills=TESTS)
    home = tmp_path / "home"
    result = pytester.runpytest("-p", "no:cacheprovider", "--llm-drill-home", str(home))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"llm-drill history: {home / 'history.sqlite3'}*"])
    db = sqlite3.connect(home / "history.sqlite3")
    assert sorted(db.execute("SELECT drill FROM drill_runs").fetchall()) == [
        ("cancel_storm",), ("node_kill",)]
    assert (home / "runs" / "20260101-000000-abcdef" / "run_meta.json").is_file()
    db.close()
