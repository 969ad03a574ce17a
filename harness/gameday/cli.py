"""``llm-drill gameday``: run a plan, and render, pause, resume and inspect schedules.

    llm-drill gameday run PLAN [--dry-run]
    llm-drill gameday schedule run FILE [--name N]      (the long-lived scheduler)
    llm-drill gameday schedule render FILE --as crontab|systemd|cronjob [--name N] [--out DIR]
    llm-drill gameday schedule pause NAME | resume NAME
    llm-drill gameday schedule status FILE
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from harness.clock import StoppableClock
from harness.errors import ConfigError
from harness.files import write_atomic
from harness.gameday.collect import resolve
from harness.gameday.day import Manual, describe_plan, report_result, run_plan
from harness.gameday.exclusive import one_game_day_per_stack
from harness.gameday.plan import check_targets, load_plan, plan_topology, stack_hosts
from harness.gameday.render import (
    DEFAULT_IMAGE,
    RenderError,
    cronjob_yaml,
    crontab_line,
    systemd_units,
)
from harness.gameday.run import UNWIND_WITHIN_S, interrupt_on_sigint_and_sigterm, pytest_argv
from harness.gameday.runner import ProcessRunner
from harness.gameday.schedule import (
    SchedulePaths,
    Scheduler,
    ScheduleSpec,
    is_paused,
    load_schedules,
    load_state,
    set_paused,
)
from harness.runs import default_home

FORMATS = ("crontab", "systemd", "cronjob")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gameday = subparsers.add_parser("gameday", help="game days: run plans, schedules")
    actions = gameday.add_subparsers(dest="gameday_command", required=True)
    run = actions.add_parser("run", help="run a game-day plan (its drills on its stack)")
    run.add_argument("plan", type=Path, help="plan file (see harness/gameday/plan.py)")
    run.add_argument("--dry-run", action="store_true",
                     help="validate the plan, resolve every target and drill, print what "
                          "would happen; start and touch nothing")
    run.add_argument("--manual", action="store_true",
                     help="people in the loop: each fault waits for the facilitator (Enter, "
                          "or POST /go on the desk), responders acknowledge detection and "
                          "mitigation (d / m, or POST /ack/detected, /ack/mitigated)")
    run.add_argument("--desk-port", type=int, default=0,
                     help="the desk's port on 127.0.0.1 (default: any free port, printed)")
    run.set_defaults(func=cmd_run)
    schedule = actions.add_parser("schedule", help="render, pause, resume, status")
    sub = schedule.add_subparsers(dest="schedule_command", required=True)
    runs = sub.add_parser("run", help="the scheduler: run one schedule's plans on time until "
                                      "SIGTERM or Ctrl-C")
    runs.add_argument("file", type=Path, help="schedules file (schedules: [...])")
    runs.add_argument("--name", default=None, help="the schedule (needed if the file has more)")
    runs.set_defaults(func=cmd_schedule_run)
    render = sub.add_parser("render", help="a schedule as crontab, systemd units or CronJob")
    render.add_argument("file", type=Path, help="schedules file (schedules: [...])")
    render.add_argument("--as", dest="fmt", choices=FORMATS, required=True)
    render.add_argument("--name", default=None, help="only this schedule (default: all)")
    render.add_argument("--image", default=DEFAULT_IMAGE, help="the CronJob's image")
    render.add_argument("--command", default=None,
                        help="what runs (default: llm-drill gameday run PLAN)")
    render.add_argument("--out", type=Path, default=None,
                        help="write files here (default: print)")
    render.set_defaults(func=cmd_render)
    for verb, paused in (("pause", True), ("resume", False)):
        action = sub.add_parser(verb, help=f"{verb} a schedule (a running scheduler sees it "
                                           "at its next tick)")
        action.add_argument("name")
        action.set_defaults(func=cmd_pause, paused=paused)
    status = sub.add_parser("status", help="each schedule's state and recent history")
    status.add_argument("file", type=Path, help="schedules file")
    status.set_defaults(func=cmd_status)


def cmd_run(args: argparse.Namespace) -> int:
    loaded = load_plan(args.plan)
    topology = plan_topology(loaded)
    check_targets(loaded, stack_hosts(loaded, topology))
    collected = resolve(loaded)
    home = _home(args)
    argv = pytest_argv(loaded, collected, home)
    print(describe_plan(loaded, topology, collected, argv))
    if args.dry_run:
        print("dry run: nothing started, nothing touched")
        return 0
    interrupt_on_sigint_and_sigterm()
    manual = Manual(port=args.desk_port, keys=sys.stdin) if args.manual else None
    with one_game_day_per_stack(loaded.plan.stack.attach or topology.front_door_url):
        return report_result(run_plan(loaded, argv, topology.prometheus_url, home, manual))


def cmd_schedule_run(args: argparse.Namespace) -> int:
    chosen = _chosen(args)
    if len(chosen) != 1:
        raise ConfigError(f"{len(chosen)} schedules: pick one with --name "
                          f"({', '.join(s.name for s in chosen)})", path=str(args.file))
    home = _home(args)
    spec = chosen[0]
    runner = ProcessRunner(folder=args.file.resolve().parent, home=home,
                           log_dir=SchedulePaths(home, spec.name).folder / "logs")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"llm-drill gameday: scheduling {spec.name} ({spec.schedule} -> {spec.plan})")
    try:
        with Scheduler(spec, runner, StoppableClock(stop), home) as scheduler:
            scheduler.run(should_stop=stop.is_set)
    finally:
        runner.interrupt_all(within=UNWIND_WITHIN_S)
    return 0


def _home(args: argparse.Namespace) -> Path:
    return default_home(getattr(args, "home", None))


def _chosen(args: argparse.Namespace) -> tuple[ScheduleSpec, ...]:
    specs = load_schedules(args.file)
    if args.name is None:
        return specs
    picked = tuple(s for s in specs if s.name == args.name)
    if not picked:
        raise ConfigError(f"no schedule {args.name!r} (known: "
                          f"{', '.join(s.name for s in specs)})", path=str(args.file))
    return picked


def rendered(spec: ScheduleSpec, fmt: str, *, image: str = DEFAULT_IMAGE,
             command: tuple[str, ...] = ()) -> dict[str, str]:
    """``{file name: text}`` of one schedule in one format."""
    if fmt == "crontab":
        return {f"{spec.name}.crontab": crontab_line(spec, command)}
    if fmt == "systemd":
        return systemd_units(spec, command)
    return {f"{spec.name}.cronjob.yaml": cronjob_yaml(spec, image=image, command=command)}


def cmd_render(args: argparse.Namespace) -> int:
    command = tuple(shlex.split(args.command)) if args.command else ()
    refused = 0
    for spec in _chosen(args):
        try:
            files = rendered(spec, args.fmt, image=args.image, command=command)
        except RenderError as exc:
            print(f"llm-drill gameday: not rendered: {exc}", file=sys.stderr)
            refused += 1
            continue
        for name, text in files.items():
            if args.out is not None:
                print(write_atomic(args.out / name, text))
            else:
                print(f"# --- {name}\n{text}")
    return 1 if refused else 0


def cmd_pause(args: argparse.Namespace) -> int:
    set_paused(_home(args), args.name, args.paused)
    print(f"schedule {args.name}: {'paused' if args.paused else 'resumed'}")
    return 0


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def cmd_status(args: argparse.Namespace) -> int:
    home = _home(args)
    for spec in load_schedules(args.file):
        state = load_state(SchedulePaths(home, spec.name).state)
        paused = " (paused)" if is_paused(home, spec.name) else ""
        if state is None:
            print(f"{spec.name}: {spec.schedule} -> {spec.plan}; never run{paused}")
            continue
        upcoming = spec.timing.next_after(state.last_scheduled_at, state.anchor)
        print(f"{spec.name}: {spec.schedule} -> {spec.plan}{paused}; last fire time "
              f"{_when(state.last_scheduled_at)}, next {_when(upcoming)} UTC; "
              f"{len(state.active)} running")
        for entry in state.history:
            print(f"  {_when(entry.scheduled_at)}  {entry.status:<12} {entry.detail}")
    return 0
