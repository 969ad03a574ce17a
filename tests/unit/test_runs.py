"""The one home resolver (an explicit option, then $LLM_DRILL_HOME, then ./.llm-drill), and
the abort reason a game day leaves for its session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.runs import ABORT_FILE_ENV, HOME_ENV, abort_reason, default_home


def test_an_explicit_home_wins_over_the_environment(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert default_home(tmp_path / "given") == tmp_path / "given"


def test_the_environment_wins_over_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(HOME_ENV, "relative-home")
    assert default_home(None) == tmp_path.resolve() / "relative-home"


def test_without_either_the_home_is_dot_llm_drill_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(HOME_ENV, raising=False)
    assert default_home("") == tmp_path.resolve() / ".llm-drill"


def test_the_game_days_abort_reason_is_read_from_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ABORT_FILE_ENV, raising=False)
    assert abort_reason() is None
    path = tmp_path / "abort.json"
    monkeypatch.setenv(ABORT_FILE_ENV, str(path))
    assert abort_reason() is None  # not written: no abort
    path.write_text(json.dumps({"reason": "client error ratio: 0.9 > 0.5 for 30s"}))
    assert abort_reason() == "client error ratio: 0.9 > 0.5 for 30s"
