"""Process runtime against container runtime, same machine, same run.

    .venv/bin/python benchmarks/bench_runtimes.py [--rounds 2]

For each runtime: `up` (the container runtime's first round includes importing the base
image into a fresh engine), the resident memory of every process of the run while idle
(container processes carry the run id in their environment, like the process runtime's),
restart-to-ready of a node and of the front door after a SIGKILL from outside (by
supervisord on one, by the engine's restart policy on the other: kill -> a real
completion through the component), and `down` to zero residue. The container runtime
uses the project's own dockerd under the benchmark's home, started and stopped here.
Prints one table and the container/process ratios. Needs the stack's ports free.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.stack.engine import connect, engine_files, session_engine
from harness.stack.processes import tagged_processes
from harness.stack.stack import Stack, create_stack
from harness.waits import Wait


@dataclass(frozen=True)
class Round:
    up_s: float
    rss_gib: float
    node_restart_s: float
    front_door_restart_s: float
    down_s: float


def run_rss(run_id: str) -> float:
    total = 0
    for pid in tagged_processes(run_id):
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total / 2**30


def restart_to_ready(stack: Stack, name: str) -> float:
    """SIGKILL from outside; seconds until the stack brought back a new process that
    answers a real completion."""
    before = stack.pid(name)
    began = time.monotonic()
    stack.crash(name)
    Wait(within=120, interval=0.05).until_true(
        f"a new {name}", lambda: stack.pid(name) not in (None, before) and stack.is_running(name))
    stack.wait_ready(name, within=120)
    return time.monotonic() - began


def one_round(home: Path, runtime: str) -> Round:
    stack = create_stack(home=home, owned_by_me=True, runtime=runtime)
    began = time.monotonic()
    stack.up()
    up_s = time.monotonic() - began
    try:
        rss = run_rss(stack.run_id)
        node = restart_to_ready(stack, stack.node_names[0])
        front = restart_to_ready(stack, stack.topology.front_door.name)
    finally:
        began = time.monotonic()
        left = stack.down()
        down_s = time.monotonic() - began
    assert left.clean, left
    return Round(up_s, rss, node, front, down_s)


def drop_base_images(home: Path) -> None:
    client = connect(engine_files(home).url)
    try:
        for image in client.images.list(name="llm-drill/base"):
            client.images.remove(image.id, force=True)
    finally:
        client.close()


def median(rounds: list[Round], field: Callable[[Round], float]) -> float:
    return statistics.median(field(r) for r in rounds)


FIELDS: dict[str, Callable[[Round], float]] = {
    "up s": lambda r: r.up_s,
    "idle RSS GiB": lambda r: r.rss_gib,
    "node kill->ready s": lambda r: r.node_restart_s,
    "front door kill->ready s": lambda r: r.front_door_restart_s,
    "down s": lambda r: r.down_s,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[Round]] = {"process": [], "container": []}
    with tempfile.TemporaryDirectory(prefix="bench-runtimes-") as tmp:
        home = Path(tmp)
        with session_engine(home):
            drop_base_images(home)
            for _ in range(args.rounds):
                for runtime, rounds in results.items():
                    rounds.append(one_round(home, runtime))
    print(f"{'measure':<26}{'process':>10}{'container':>11}{'ratio':>8}")
    for label, field in FIELDS.items():
        p, c = median(results["process"], field), median(results["container"], field)
        print(f"{label:<26}{p:>10.2f}{c:>11.2f}{c / p if p else float('nan'):>8.2f}")
    first = results["container"][0].up_s
    print(f"container first up (base image imported into a fresh engine): {first:.2f} s; "
          f"medians over {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
