"""Benchmark of reading the tail of a node's log: from the file's end (what the runtimes
do, :func:`harness.stack.log_files.tail_of`) against reading the whole file line by line
into a bounded deque (what they did before). No stack needed.

    .venv/bin/python benchmarks/bench_log_tail.py [--runs 20] [--lines 50]

The SIGTERM drill's last gate reads the last 50 lines of node1's log every 50 ms to see
the moment node1 takes a request; a node's log grows to tens of megabytes over a session
(one ``Added request`` line per request, a traceback per shutdown). Logs of 1, 10 and 50
MiB of such lines are written to a temporary folder; each read is timed (median of
``--runs``) with its peak allocation (tracemalloc). Prints a markdown table with the
ratio of the two ways in the same run (docs/drills.md quotes it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.stack.log_files import tail_of

LINE = ("INFO 2026-12-05 13:43:23,102 vllm.v1.engine.async_llm Added request "
        "cmpl-fd-81a4c259-380a-448c-935f-374d7e87315f-0-93f6a425.\n")
SIZES_MIB = (1, 10, 50)


def whole_file(path: Path, lines: int) -> str:
    with path.open(errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip()


def write_log(folder: Path, mib: int) -> Path:
    path = folder / f"node1-{mib}MiB.log"
    count = mib * 1024 * 1024 // len(LINE)
    with path.open("w") as handle:
        for _ in range(count // 1000):
            handle.write(LINE * 1000)
    return path


def timed(read: Callable[[Path, int], str], path: Path, lines: int,
          runs: int) -> tuple[float, int]:
    """Median seconds of a read, and its peak allocation in bytes."""
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        read(path, lines)
        seconds.append(time.perf_counter() - began)
    tracemalloc.start()
    read(path, lines)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(seconds), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()
    print("| log | from the end | whole file | ratio | peak memory, end / whole |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-log-tail-") as folder:
        for mib in SIZES_MIB:
            path = write_log(Path(folder), mib)
            assert tail_of(path, args.lines) == whole_file(path, args.lines)
            end_s, end_peak = timed(tail_of, path, args.lines, args.runs)
            whole_s, whole_peak = timed(whole_file, path, args.lines, args.runs)
            print(f"| {mib} MiB, last {args.lines} lines | {end_s * 1e3:.3f} ms | "
                  f"{whole_s * 1e3:.1f} ms | {whole_s / end_s:.0f}x | "
                  f"{end_peak / 1024:.0f} KiB / {whole_peak / 1024:.0f} KiB |")


if __name__ == "__main__":
    main()
