"""Stack lifecycle benchmark: cold and warm `up`, peak RSS, `down`, and reaper cleanup.

    .venv/bin/python benchmarks/bench_stack.py [--skip-cold]

Cold = the tiny models are not cached (built into a fresh cache dir first); warm =
cached. Peak RSS sums every process of the run while it is up. `down` is timed to zero
residue; the reaper case SIGKILLs an owning process and times the watchdog's cleanup.
Prints one table; run on demand (it needs the stack's ports free).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from harness.runs import load_state
from harness.stack.reaper import residue
from harness.stack.stack import create_stack
from harness.waits import Probe, Wait


def group_rss(run_dir: Path) -> int:
    state = load_state(run_dir)
    total = 0
    for record in (state.components.values() if state else ()):
        for proc in _group(record.pid):
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
    return total


def _group(pgid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def time_up_down(home: Path) -> tuple[float, int, float]:
    stack = create_stack(home=home, owned_by_me=True)
    began = time.monotonic()
    stack.up()
    up_s = time.monotonic() - began
    rss = group_rss(stack.run_dir)
    began = time.monotonic()
    left = stack.down()
    down_s = time.monotonic() - began
    assert left.clean, left
    return up_s, rss, down_s


OWNER = """
import sys, time
from pathlib import Path
from harness.stack.stack import create_stack
stack = create_stack(home=Path(sys.argv[1]), owned_by_me=True)
stack.up()
print(stack.run_id, flush=True)
time.sleep(600)
"""


def time_reaper(home: Path) -> float:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(home)], stdout=subprocess.PIPE,
                             text=True)
    assert owner.stdout is not None
    run_id = owner.stdout.readline().strip()
    began = time.monotonic()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    Wait(within=60, interval=0.1).until("the watchdog to clean up", lambda: Probe(
        done=residue(run_id).clean, seen=str(residue(run_id))))
    return time.monotonic() - began


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as tmp:
        home = Path(tmp)
        if not args.skip_cold:
            os.environ["LLM_DRILL_CACHE"] = str(home / "cache")
            rows.append(("cold up (models built)", *time_up_down(home)))
            del os.environ["LLM_DRILL_CACHE"]
        rows.append(("warm up (models cached)", *time_up_down(home)))
        reaper_s = time_reaper(home)
    print(f"{'case':<26}{'up s':>8}{'peak RSS GiB':>14}{'down s':>9}")
    for name, up_s, rss, down_s in rows:
        print(f"{name:<26}{up_s:>8.1f}{rss / 2**30:>14.2f}{down_s:>9.1f}")
    print(f"{'SIGKILLed owner -> clean':<26}{'':>8}{'':>14}{reaper_s:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
