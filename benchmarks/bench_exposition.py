"""Benchmark: parsing a vLLM ``/metrics`` page (no stack needed).

    .venv/bin/python benchmarks/bench_exposition.py [--repeat 20]

Parses the busy-node fixture (``tests/fixtures/metrics/vllm_busy.txt``, a real vLLM
0.32 page) with ``prometheus_client.parser`` and with :mod:`harness.clients.exposition`
(what the harness uses), median of ``--repeat`` runs each, and checks both read the
same samples. Prints a markdown table with the ratio (docs/drills.md quotes it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.parser import text_string_to_metric_families

from harness.clients.exposition import samples

PAGE = Path(__file__).resolve().parent.parent / "tests/fixtures/metrics/vllm_busy.txt"
Parsed = list[tuple[str, tuple[tuple[str, str], ...], float]]


def with_prometheus_client(text: str) -> Parsed:
    return [(s.name, tuple(sorted(s.labels.items())), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def with_exposition(text: str) -> Parsed:
    return [(name, tuple(sorted(labels.items())), value) for name, labels, value in samples(text)]


def median_ms(parse: Callable[[str], Parsed], text: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        parse(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text = PAGE.read_text()
    if sorted(with_prometheus_client(text)) != sorted(with_exposition(text)):
        print("the two parsers disagree on the page", file=sys.stderr)
        return 1
    old = median_ms(with_prometheus_client, text, args.repeat)
    new = median_ms(with_exposition, text, args.repeat)
    lines = len(text.splitlines())
    print(f"page: {PAGE.name}, {len(text.encode()) / 1024:.0f} KiB, {lines} lines, "
          f"median of {args.repeat}\n")
    print("| parser | ms per page | ratio |")
    print("|---|---|---|")
    print(f"| prometheus_client.parser | {old:.1f} | 1.00 |")
    print(f"| harness.clients.exposition | {new:.1f} | {old / new:.1f}x faster |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
