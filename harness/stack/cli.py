"""``llm-drill up | status | logs | down | render``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.errors import HarnessError
from harness.runs import current_run_dir, default_home, load_state, set_current
from harness.stack.reaper import reap_stale, teardown
from harness.stack.runtime import Event, Phase
from harness.stack.stack import RUNTIMES, Stack, attach_stack, create_stack
from harness.stack.status import stack_status

console = Console(stderr=True)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser("up", help="bring the stack up and leave it running")
    up.add_argument("--runtime", choices=RUNTIMES, default="process",
                    help="local processes (default) or containers on a Docker-API engine "
                         "(DOCKER_HOST, else the one `llm-drill engine start` runs)")
    up.set_defaults(func=cmd_up)
    engine = sub.add_parser("engine", help="the project's own Docker daemon for the container "
                                           "runtime: start, stop or status")
    engine.add_argument("action", choices=("start", "stop", "status"))
    engine.set_defaults(func=cmd_engine)
    attach = sub.add_parser("attach", help="map a running compose project's containers to "
                                           "the stack's components; say which faults a "
                                           "drill can inject on it")
    attach.add_argument("--compose-project", required=True, metavar="NAME",
                        help="the compose project (DOCKER_HOST, else the project's engine)")
    attach.set_defaults(func=cmd_attach)
    sub.add_parser("status", help="each component: pid, port, health, memory").set_defaults(
        func=cmd_status)
    logs = sub.add_parser("logs", help="print a component's log")
    logs.add_argument("component")
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.set_defaults(func=cmd_logs)
    sub.add_parser("down", help="tear the stack down, leaving nothing").set_defaults(
        func=cmd_down)
    render = sub.add_parser("render", help="write every config and docker-compose.yml from the "
                                           "topology into a directory")
    render.add_argument("--out", type=Path, default=Path("compose"), metavar="DIR",
                        help="directory to write into, created if missing (default: ./compose)")
    render.set_defaults(func=cmd_render)


def cmd_engine(args: argparse.Namespace) -> int:
    from harness.stack.engine import daemon_pid, engine_files, start_daemon, stop_daemon

    files = engine_files(default_home(args.home))
    if args.action == "start":
        started = start_daemon(files)
        console.print(f"dockerd (pid {started}) answers on {files.url}; its log: {files.log}")
    elif args.action == "stop":
        stopped = stop_daemon(files)
        console.print("dockerd stopped" if stopped else "no dockerd of this home was running")
    else:
        pid = daemon_pid(files)
        console.print(f"dockerd pid {pid} on {files.url}" if pid else "not running")
    return 0


class ProgressTable:
    """A live table: one row per component with its latest phase and time."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, str]] = {}
        self.began = time.monotonic()

    def __call__(self, event: Event) -> None:
        since = f"{time.monotonic() - self.began:5.1f}s"
        detail = event.detail if event.phase is not Phase.READY else f"{event.elapsed_s:.1f}s"
        self.rows[event.component] = (event.phase.value, since, detail[:60])

    def render(self) -> Table:
        table = Table(title="llm-drill up")
        for column in ("component", "phase", "at", "detail"):
            table.add_column(column)
        for name, (phase, at, detail) in self.rows.items():
            style = {"ready": "green", "failed": "red"}.get(phase, "yellow")
            table.add_row(name, f"[{style}]{phase}[/]", at, detail)
        return table


def cmd_up(args: argparse.Namespace) -> int:
    home = default_home(args.home)
    if current_run_dir(home) is not None:
        raise HarnessError(f"a stack is already up ({current_run_dir(home)}); "
                           "run `llm-drill down` first")
    reap_stale(home)
    progress = ProgressTable()
    stack = create_stack(args.stack_file, home=home, on_event=progress, runtime=args.runtime)
    set_current(home, stack.run_id)
    began = time.monotonic()
    try:
        with Live(progress.render(), console=console, refresh_per_second=4,
                  get_renderable=progress.render):
            stack.up()
    except BaseException:
        set_current(home, None)
        raise
    console.print(f"stack up in {time.monotonic() - began:.1f}s; run dir {stack.run_dir}")
    console.print(f"front door: {stack.front_door_url}  prometheus: {stack.prometheus_url}")
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    """The role of each container, its state, and the faults a drill can inject; exit 1
    when a required component is missing or down (naming what was found)."""
    from harness.stack.compose_runtime import ComposeRuntime, available_faults
    from harness.stack.engine import engine_url
    from harness.topology import load_topology

    runtime = ComposeRuntime(load_topology(args.stack_file), args.compose_project,
                             engine_url(default_home(args.home)))
    try:
        table = Table(title=f"compose project {args.compose_project}")
        for column in ("component", "container", "running", "healthy"):
            table.add_column(column)
        for name in runtime.specs():
            table.add_row(name, runtime.roles.containers.get(name, "-"),
                          str(runtime.is_running(name)), str(runtime.healthy(name)))
        Console().print(table)
        for kind, verdict in available_faults(runtime, runtime.http).items():
            console.print(f"{kind}: {verdict}")
        try:
            runtime.up()
        except HarnessError as exc:
            console.print(f"[red]{exc}[/]")
            return 1
        console.print(f"drills: pytest drills/ --compose-project {args.compose_project}")
        return 0
    finally:
        runtime.close()


def _current(args: argparse.Namespace) -> Stack:
    home = default_home(args.home)
    run_dir = current_run_dir(home)
    if run_dir is None:
        raise HarnessError(f"no stack is up under {home} (run `llm-drill up`)")
    return attach_stack(run_dir)


def cmd_status(args: argparse.Namespace) -> int:
    stack = _current(args)
    table = Table(title=f"run {stack.run_id}")
    for column in ("component", "pid", "ports", "health", "memory"):
        table.add_column(column)
    with httpx.Client(timeout=2.0) as client:
        rows = stack_status(stack, client)
    for row in rows:
        table.add_row(row.name, str(row.pid or "-"), ",".join(map(str, row.ports)),
                      row.health, f"{row.rss_bytes / 2**20:.0f} MiB")
    Console().print(table)
    return 0 if all(r.health == "ok" for r in rows if r.pid) else 1


def cmd_logs(args: argparse.Namespace) -> int:
    stack = _current(args)
    print(stack.log_tail(args.component, args.lines))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    home = default_home(args.home)
    run_dir = current_run_dir(home)
    if run_dir is None:
        console.print("no stack is up")
        return 0
    began = time.monotonic()
    state = load_state(run_dir)
    left = teardown(run_dir)
    set_current(home, None)
    took = time.monotonic() - began
    if not left.clean:
        console.print(f"[red]residue after down[/]: processes {left.processes}, "
                      f"cgroups {left.cgroups}, temp dirs {left.temp_dirs}")
        return 1
    run_id = state.run_id if state else run_dir.name
    console.print(f"run {run_id} down in {took:.1f}s; nothing left running")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from harness.stack.compose import render_all
    from harness.topology import load_topology

    for path in render_all(load_topology(args.stack_file), args.out):
        console.print(f"wrote {path}")
    return 0
