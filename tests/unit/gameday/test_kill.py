"""A scheduler killed with SIGKILL: the kernel drops its lock, and the one started after
it neither runs the fire time again nor forgets the run it left going."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from harness.gameday.schedule import (
    INTERRUPTED,
    RunHandle,
    Scheduler,
    ScheduleSpec,
    load_state,
)
from tests.fakes import FakeClock

ONE_AM = 1_767_229_200.0  # 2026-01-01T01:00:00Z
ROOT = Path(__file__).resolve().parents[3]

# A scheduler that starts the 01:00 run, says so, then waits to be killed.
VICTIM = """
import sys
from pathlib import Path
from harness.gameday.schedule import Scheduler, ScheduleSpec

class Clock:
    def __init__(self, t): self.t = t
    def now(self): return self.t
    def wall(self): return self.t
    def sleep(self, s): self.t += s
    async def sleep_async(self, s): self.t += s

class Forever:
    def poll(self): return None

clock = Clock({start})
spec = ScheduleSpec(name="hourly", plan="plans/p.yaml", schedule="@hourly")
with Scheduler(spec, lambda plan, at: Forever(), clock, Path(sys.argv[1])) as s:
    clock.t = {one_am}
    print([e.status for e in s.tick()], flush=True)
    sys.stdin.read()  # until killed
"""


def must_not_run(plan: str, scheduled_at: float) -> RunHandle:
    raise AssertionError(f"{plan} run again for {scheduled_at}")


def test_a_killed_scheduler_neither_reruns_nor_forgets(tmp_path: Path) -> None:
    code = VICTIM.format(start=ONE_AM - 1800, one_am=ONE_AM)
    victim = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "['running']"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.stdout is not None
        victim.stdout.close()
        assert victim.stdin is not None
        victim.stdin.close()

    clock = FakeClock(start=0.0, wall_offset=ONE_AM + 60)
    spec = ScheduleSpec(name="hourly", plan="plans/p.yaml", schedule="@hourly")
    with Scheduler(spec, must_not_run, clock, tmp_path) as again:
        assert again.tick() == ()
    state = load_state(again.paths.state)
    assert state is not None
    assert [(e.scheduled_at, e.status) for e in state.history] == [(ONE_AM, INTERRUPTED)]
