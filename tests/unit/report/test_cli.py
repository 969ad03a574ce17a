"""``llm-drill report`` through ``harness.cli.main``."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from tests.unit.report.journals import node_restart, write_run


def test_no_runs_exits_1_with_a_message(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path), "report"]) == 1
    err = capsys.readouterr().err
    assert "no drill journals" in err and str(tmp_path / "runs") in err


def test_a_run_dir_without_journals_exits_1(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--run-dir", str(tmp_path)]) == 1
    assert str(tmp_path / "journals") in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_newest_run_with_journals_is_the_default(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    write_run(runs / "20240101-000000-aaaaaa", node_restart(drill="older"))
    write_run(runs / "20240102-000000-bbbbbb", node_restart(drill="newer"))
    (runs / "20240103-000000-cccccc").mkdir()  # newest, but no journals
    assert main(["--home", str(tmp_path), "report"]) == 0
    out = capsys.readouterr().out
    chosen = runs / "20240102-000000-bbbbbb"
    assert f"report:   {chosen / 'report' / 'index.html'}" in out
    assert f"runbook:  {chosen / 'runbooks' / 'NodeDown.md'}" in out
    assert "newer" in (chosen / "report" / "index.html").read_text()
    assert not (runs / "20240101-000000-aaaaaa" / "report").exists()


def test_out_and_runbooks_dir_options(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", node_restart())
    out, books = tmp_path / "r.html", tmp_path / "books"
    assert main(["report", "--run-dir", str(run), "--out", str(out),
                 "--runbooks-dir", str(books)]) == 0
    assert out.is_file() and "3.50 s" in (books / "NodeDown.md").read_text()
    assert str(out) in capsys.readouterr().out
