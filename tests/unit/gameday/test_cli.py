"""``llm-drill gameday schedule``: render, pause/resume, status."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.gameday.schedule import is_paused

SCHEDULES = """\
schedules:
  - name: weekly
    plan: plans/weekly.yaml
    schedule: "0 3 * * mon"
  - name: often
    plan: plans/smoke.yaml
    schedule: "@every 15m"
"""


@pytest.fixture
def schedules(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(SCHEDULES)
    return path


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), "gameday", "schedule", *argv])


def test_render_writes_files_and_refuses_what_has_no_form(
        tmp_path: Path, schedules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(tmp_path, "render", str(schedules), "--as", "cronjob", "--out", str(out)) == 1
    assert (out / "weekly.cronjob.yaml").is_file()
    assert "not rendered: often: '@every 15m' is an interval" in capsys.readouterr().err
    assert run(tmp_path, "render", str(schedules), "--as", "systemd", "--name", "often",
               "--command", "/usr/local/bin/my-gameday --plan smoke") == 0
    text = capsys.readouterr().out
    assert "OnUnitActiveSec=900s" in text
    assert "ExecStart=/usr/local/bin/my-gameday --plan smoke" in text


def test_render_names_an_unknown_schedule(tmp_path: Path, schedules: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "render", str(schedules), "--as", "crontab", "--name", "nope") == 2
    assert "no schedule 'nope' (known: weekly, often)" in capsys.readouterr().err


def test_pause_resume_and_status(tmp_path: Path, schedules: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "pause", "weekly") == 0
    assert is_paused(tmp_path, "weekly")
    assert run(tmp_path, "status", str(schedules)) == 0
    out = capsys.readouterr().out
    assert "weekly: 0 3 * * mon -> plans/weekly.yaml; never run (paused)" in out
    assert run(tmp_path, "resume", "weekly") == 0
    assert not is_paused(tmp_path, "weekly")
