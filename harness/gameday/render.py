"""A schedule rendered for the teams that schedule elsewhere: a crontab line, a systemd
timer and service, a Kubernetes CronJob. Renderings only: nothing here installs them.

What each can and cannot carry over (refused with a reason rather than rendered wrong):

- **crontab**: ``Forbid`` through ``flock -n`` (a run still going makes the next one skip);
  no starting deadline (cron never runs a missed time); no ``@every``.
- **systemd**: ``OnCalendar=`` in UTC, checked by ``systemd-analyze calendar`` in the
  tests; ``Persistent=true`` runs one missed time after downtime when there is no
  starting deadline. A unit runs once at a time, so ``Allow`` cannot be rendered; cron's
  "day-of-month OR day-of-week" and its ``L``/``#``/``W`` have no OnCalendar form.
- **CronJob** (``batch/v1``): every field maps (schedule, ``timeZone: Etc/UTC``,
  ``concurrencyPolicy``, ``startingDeadlineSeconds``, ``suspend``, history limits).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

import yaml

from harness.errors import HarnessError
from harness.gameday.cron import CronError, Timing, cron_fields
from harness.gameday.schedule import ALLOW, FORBID, ScheduleSpec

DEFAULT_IMAGE = "llm-drill:latest"
UNIT_PREFIX = "llm-drill-gameday-"
_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
_RANGES = {"minute": 60, "hour": 24, "day": 31, "month": 12, "weekday": 7}


class RenderError(HarnessError):
    """The schedule has no faithful form in the asked-for format (the message says why)."""


def default_command(spec: ScheduleSpec) -> tuple[str, ...]:
    return ("llm-drill", "gameday", "run", spec.plan)


def _cron(spec: ScheduleSpec, target: str) -> str:
    timing = spec.timing
    if timing.cron is None:
        raise RenderError(f"{spec.name}: {timing.expression!r} is an interval; {target} "
                          "takes calendar times only (use a cron expression)")
    return timing.cron


def crontab_line(spec: ScheduleSpec, command: Sequence[str] = (), *,
                 lock_dir: str = "/tmp") -> str:
    """Lines for a crontab: a comment, ``CRON_TZ=UTC`` and the entry."""
    cron = _cron(spec, "cron")
    argv = list(command or default_command(spec))
    if spec.concurrency_policy == FORBID:
        argv = ["flock", "-n", f"{lock_dir}/{UNIT_PREFIX}{spec.name}.lock", *argv]
    notes = "no starting deadline in cron" if spec.starting_deadline_s is not None else ""
    header = f"# llm-drill game day {spec.name}: {spec.concurrency_policy}, UTC"
    paused = "# " if spec.paused else ""
    return "\n".join([header + (f"; {notes}" if notes else ""), "CRON_TZ=UTC",
                      f"{paused}{cron} {shlex.join(argv)}", ""])


def _values(values: Iterable[int], full: int, width: int = 2) -> str:
    chosen = sorted(set(values))
    if len(chosen) == full:
        return "*"
    return ",".join(f"{v:0{width}d}" for v in chosen)


def on_calendar(timing: Timing) -> str:
    """A five-field cron timing as a systemd ``OnCalendar=`` expression in UTC."""
    try:
        fields = cron_fields(timing)
    except CronError as exc:
        raise RenderError(str(exc)) from exc
    special = [s for s in (*fields.days, *fields.weekdays) if not isinstance(s, int) or s < 0]
    if special:
        raise RenderError(f"{timing.expression!r}: L, W and # have no OnCalendar form")
    weekdays = {int(d) % 7 for d in fields.weekdays if isinstance(d, int)}
    monthdays = {int(d) for d in fields.days if isinstance(d, int)}
    if not fields.day_and:  # both restricted: cron fires on either
        if len(monthdays) < _RANGES["day"] and len(weekdays) < _RANGES["weekday"]:
            raise RenderError(f"{timing.expression!r}: cron runs on the day of the month OR "
                              "the day of the week; OnCalendar can only ask for both")
        monthdays, weekdays = set(range(1, 32)), set(range(7))  # one of them is every day
    days = ("" if len(weekdays) == _RANGES["weekday"]
            else ",".join(_DAYS[d] for d in sorted(weekdays)) + " ")
    date = (f"*-{_values(fields.months, _RANGES['month'])}"
            f"-{_values(monthdays, _RANGES['day'])}")
    clock = (f"{_values(fields.hours, _RANGES['hour'])}:"
             f"{_values(fields.minutes, _RANGES['minute'])}:00")
    return f"{days}{date} {clock} UTC"


def systemd_units(spec: ScheduleSpec, command: Sequence[str] = ()) -> dict[str, str]:
    """``{unit file name: text}``: the timer and the oneshot service it starts."""
    if spec.concurrency_policy == ALLOW:
        raise RenderError(f"{spec.name}: systemd runs a unit once at a time; concurrency "
                          "policy Allow cannot be rendered (use Forbid)")
    unit = f"{UNIT_PREFIX}{spec.name}"
    timing = spec.timing
    if timing.every_s is not None:
        when = [f"OnActiveSec={timing.every_s:g}s", f"OnUnitActiveSec={timing.every_s:g}s"]
    else:
        when = [f"OnCalendar={on_calendar(timing)}",
                f"Persistent={'true' if spec.starting_deadline_s is None else 'false'}"]
    timer = "\n".join([
        "[Unit]", f"Description=llm-drill game day {spec.name} (schedule {timing.expression})",
        "", "[Timer]", *when, f"Unit={unit}.service", "",
        "[Install]", "WantedBy=timers.target", ""])
    service = "\n".join([
        "[Unit]", f"Description=llm-drill game day {spec.name}", "",
        "[Service]", "Type=oneshot",
        f"ExecStart={shlex.join(command or default_command(spec))}", ""])
    return {f"{unit}.timer": timer, f"{unit}.service": service}


def cronjob_yaml(spec: ScheduleSpec, *, image: str = DEFAULT_IMAGE,
                 command: Sequence[str] = ()) -> str:
    """A ``batch/v1`` CronJob running the plan in ``image``."""
    argv = list(command or default_command(spec))
    job_spec: dict[str, object] = {
        "schedule": _cron(spec, "a Kubernetes CronJob"),
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": spec.concurrency_policy,
        "suspend": spec.paused,
        **({} if spec.starting_deadline_s is None
           else {"startingDeadlineSeconds": int(spec.starting_deadline_s)}),
        "successfulJobsHistoryLimit": spec.history_limit,
        "failedJobsHistoryLimit": spec.history_limit,
        "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "llm-drill", "image": image,
                            "command": argv[:1], "args": argv[1:]}]}}}},
    }
    document = {"apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": spec.name,
                             "labels": {"app.kubernetes.io/name": "llm-drill",
                                        "app.kubernetes.io/component": "gameday"}},
                "spec": job_spec}
    return yaml.safe_dump(document, sort_keys=False)
