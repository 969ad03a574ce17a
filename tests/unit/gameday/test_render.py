"""Renderings of a schedule: the crontab entry parses back to the same times, systemd's
own parser agrees with cronsim on the next fire times, the CronJob has every field its
schema requires. Nothing here claims they ran."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zoneinfo
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from cronsim import CronSim, CronSimError

from harness.gameday.cron import parse_timing
from harness.gameday.render import (
    RenderError,
    cronjob_yaml,
    crontab_line,
    on_calendar,
    systemd_units,
)
from harness.gameday.schedule import NAME, ScheduleSpec

BASE = datetime(2026, 1, 1, tzinfo=UTC)
EXPRESSIONS = ["0 3 * * mon", "*/15 * * * *", "@daily", "30 4 1,15 * *", "0 */6 * 1-3 1-5",
               "0 0 * * 0,7", "0 0 1-31 * 1", "5 4 * * sun", "@monthly", "0 12 * * 1-5"]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def spec(schedule: str = "0 3 * * mon", **changes: Any) -> ScheduleSpec:
    return ScheduleSpec(**{"name": "weekly", "plan": "plans/weekly.yaml",
                           "schedule": schedule, **changes})


def cron_times(expression: str, count: int = 5) -> list[datetime]:
    it = CronSim(parse_timing(expression).cron or "", BASE)
    return [next(it) for _ in range(count)]


def systemd_times(calendar: str, count: int = 5) -> list[datetime]:
    assert SYSTEMD_ANALYZE is not None
    out = subprocess.run([SYSTEMD_ANALYZE, "calendar", f"--iterations={count}",
                          f"--base-time=@{int(BASE.timestamp())}", calendar],
                         capture_output=True, text=True, check=True, timeout=30,
                         env={**os.environ, "TZ": "UTC"}).stdout
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC", out)
    return [datetime.fromisoformat(s).replace(tzinfo=UTC) for s in stamps]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_systemd_fires_when_cron_does(expression: str) -> None:
    assert systemd_times(on_calendar(parse_timing(expression))) == cron_times(expression)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_rejects_nonsense() -> None:
    """The check above can fail: systemd's parser refuses what is not a calendar."""
    with pytest.raises(subprocess.CalledProcessError):
        systemd_times("Mon *-*-* 25:00:00 UTC")


@pytest.mark.parametrize(("expression", "reason"), [
    ("0 0 1 * mon", "day of the month OR the day of the week"),
    ("0 0 L * *", "L, W and #"),
    ("0 0 * * mon#2", "L, W and #"),
])
def test_what_systemd_cannot_say_is_refused(expression: str, reason: str) -> None:
    with pytest.raises(RenderError, match=reason):
        on_calendar(parse_timing(expression))


def test_systemd_units() -> None:
    units = systemd_units(spec(starting_deadline_s=600))
    timer = units["llm-drill-gameday-weekly.timer"]
    assert "OnCalendar=Mon *-*-* 03:00:00 UTC" in timer
    assert "Persistent=false" in timer  # a deadline: a run missed while down stays missed
    assert "Unit=llm-drill-gameday-weekly.service" in timer
    service = units["llm-drill-gameday-weekly.service"]
    assert "Type=oneshot" in service
    assert "ExecStart=llm-drill gameday run plans/weekly.yaml" in service
    assert "Persistent=true" in systemd_units(spec())["llm-drill-gameday-weekly.timer"]
    every = systemd_units(spec("@every 15m"))["llm-drill-gameday-weekly.timer"]
    assert "OnUnitActiveSec=900s" in every


def test_systemd_refuses_allow() -> None:
    with pytest.raises(RenderError, match="once at a time"):
        systemd_units(spec(concurrency_policy="Allow"))


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_crontab_entry_parses_back_to_the_same_times(expression: str) -> None:
    lines = crontab_line(spec(expression)).splitlines()
    assert lines[1] == "CRON_TZ=UTC"
    fields = lines[2].split()
    assert cron_times(" ".join(fields[:5])) == cron_times(expression)
    assert fields[5:8] == ["flock", "-n", "/tmp/llm-drill-gameday-weekly.lock"]


def test_crontab_allow_paused_and_deadline() -> None:
    text = crontab_line(spec(concurrency_policy="Allow", paused=True, starting_deadline_s=60))
    entry = text.splitlines()[2]
    assert entry == "# 0 3 * * mon llm-drill gameday run plans/weekly.yaml"
    assert "no starting deadline in cron" in text


@pytest.mark.parametrize("render", [crontab_line, cronjob_yaml])
def test_intervals_have_no_cron_form(render: Any) -> None:
    with pytest.raises(RenderError, match="interval"):
        render(spec("@every 15m"))


def cronjob_problems(doc: dict[str, Any]) -> list[str]:
    """What the batch/v1 CronJob schema (and its API validation) would refuse."""
    problems = []
    if doc.get("apiVersion") != "batch/v1" or doc.get("kind") != "CronJob":
        problems.append("apiVersion/kind")
    if not NAME.match(str(doc.get("metadata", {}).get("name", ""))):
        problems.append("metadata.name")
    spec_ = doc.get("spec", {})
    try:
        CronSim(str(spec_.get("schedule")), BASE)
    except CronSimError:
        problems.append("spec.schedule")
    if spec_.get("concurrencyPolicy", "Allow") not in ("Allow", "Forbid", "Replace"):
        problems.append("spec.concurrencyPolicy")
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit"):
        if key in spec_ and not (isinstance(spec_[key], int) and spec_[key] >= 0):
            problems.append(f"spec.{key}")
    if "timeZone" in spec_:
        try:
            zoneinfo.ZoneInfo(spec_["timeZone"])
        except zoneinfo.ZoneInfoNotFoundError:
            problems.append("spec.timeZone")
    pod = spec_.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    if pod.get("restartPolicy") not in ("OnFailure", "Never"):
        problems.append("restartPolicy (a Job's pod must be OnFailure or Never)")
    containers = pod.get("containers") or []
    if not containers or not all(c.get("name") and c.get("image") for c in containers):
        problems.append("containers (each needs a name and an image)")
    return problems


def test_the_cronjob_has_what_its_schema_requires() -> None:
    doc = yaml.safe_load(cronjob_yaml(spec(starting_deadline_s=600.0, history_limit=3),
                                      image="registry.local/llm-drill:1"))
    assert cronjob_problems(doc) == []
    assert doc["spec"]["schedule"] == "0 3 * * mon"
    assert doc["spec"]["concurrencyPolicy"] == "Forbid"
    assert doc["spec"]["startingDeadlineSeconds"] == 600
    assert doc["spec"]["successfulJobsHistoryLimit"] == 3
    assert doc["spec"]["suspend"] is False
    container = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["command"], container["args"]) == (
        "registry.local/llm-drill:1", ["llm-drill"], ["gameday", "run", "plans/weekly.yaml"])


def test_the_cronjob_check_can_fail() -> None:
    doc = yaml.safe_load(cronjob_yaml(spec()))
    doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    doc["spec"]["schedule"] = "61 * * * *"
    assert cronjob_problems(doc) == ["spec.schedule",
                                     "restartPolicy (a Job's pod must be OnFailure or Never)"]
