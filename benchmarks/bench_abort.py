"""Benchmark of a game day's abort: from the abort condition becoming true to every fault
reverted, and to the session's end (no stack needed).

    .venv/bin/python benchmarks/bench_abort.py [--runs 5] [--poll 0.05]

Each run is a real game-day session (``harness.gameday.run.Session``): a pytest child
whose test holds a real fault (a ``FaultBase`` that creates a file on apply and removes
it on revert) until it is interrupted. The watch's reading turns into a breach as soon
as the fault is applied, with ``for_s = 0``, so the abort is decided at the first poll
after it; the abort writes its reason and sends SIGINT, pytest unwinds, the fault's
context reverts. A thread watches the file every millisecond.

What it measures is the harness's share (the watch's poll, the signal, pytest's unwind,
the revert). A drill on the real stack adds its own unwinding on top: its load is
stopped and waited for (bounded by the load's drain) before the journal is written.
Prints a markdown table (docs/gameday.md quotes it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.clock import SystemClock
from harness.gameday.abort import AbortWatch, Reading
from harness.gameday.plan import AbortConditions
from harness.gameday.run import ABORTED, Session

HOLDING_TEST = textwrap.dedent("""\
    import pathlib, time
    from harness.faults.base import FaultBase

    class Mark(FaultBase):
        def describe(self): return "a file that must go"
        def _apply(self): pathlib.Path("fault-applied").touch()
        def _revert(self): pathlib.Path("fault-applied").unlink()

    def test_holds_a_fault():
        with Mark():
            time.sleep(120)
    """)
BREACH = Reading(error_ratio=1.0, ttft_p95_s=None, critical_alerts=frozenset())


def one_abort(folder: Path, poll_s: float) -> tuple[float, float]:
    """Seconds from the abort decision to the fault reverted, and to the session's end."""
    (folder / "test_hold.py").write_text(HOLDING_TEST)
    mark = folder / "fault-applied"
    clock = SystemClock()
    reverted: list[float] = []

    def read() -> Reading | None:
        return BREACH if mark.exists() else None

    def watch_revert() -> None:
        while not mark.exists():
            time.sleep(0.001)
        while mark.exists():
            time.sleep(0.001)
        reverted.append(clock.now())

    watcher = threading.Thread(target=watch_revert, daemon=True)
    watcher.start()
    session = Session(argv=[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "test_hold.py"], cwd=folder, abort_file=folder / "abort.json",
                      watch=AbortWatch(AbortConditions(0.5, 10.0, 0.0), frozenset(), clock),
                      read=read, clock=clock, poll_s=poll_s)
    result = session.run()
    watcher.join(timeout=10)
    if result.outcome != ABORTED or session.aborted_at is None or not reverted:
        raise RuntimeError(f"the session was not aborted and reverted: {result}")
    assert result.abort_to_exit_s is not None
    return reverted[0] - session.aborted_at, result.abort_to_exit_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=2.0,
                        help="the watch's poll, seconds (the game day's default: 2)")
    args = parser.parse_args()
    rows = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-abort-") as scratch:
            rows.append(one_abort(Path(scratch), args.poll))
        print(f"run {i + 1}: reverted {rows[-1][0] * 1000:.0f} ms, "
              f"ended {rows[-1][1] * 1000:.0f} ms after the abort", file=sys.stderr)
    to_revert = [r for r, _ in rows]
    to_exit = [e for _, e in rows]
    print(f"\n| abort (poll {args.poll:g} s, {args.runs} runs) | median | max |")
    print("|---|---|---|")
    for label, values in (("decision -> every fault reverted", to_revert),
                          ("decision -> session ended", to_exit)):
        print(f"| {label} | {statistics.median(values) * 1000:.0f} ms "
              f"| {max(values) * 1000:.0f} ms |")
    print("\nThe condition becoming true -> the decision adds up to one poll "
          f"({args.poll:g} s) plus the abort's for_s.")


if __name__ == "__main__":
    main()
