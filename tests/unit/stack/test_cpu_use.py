"""CpuUse reads the kernel's CPU accounting of processes: a busy one's share of a CPU,
none for one asleep."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from harness.stack.processes import CpuUse, cpu_seconds, process_state
from harness.waits import Wait

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
#: low enough that a busy reader on a host whose cores are taken still counts as at work
AT_WORK = 0.1


def asleep(pid: int) -> None:
    """Until ``pid`` sleeps (a Python child first spends a few tens of ms starting)."""
    Wait(within=10, interval=0.02).until_true(f"{pid} to be asleep",
                                              lambda: process_state(pid) == "S")


def burn(cpu_s: float) -> None:
    began = time.process_time()
    while time.process_time() - began < cpu_s:
        pass


def test_a_busy_process_shows_the_share_of_a_cpu_it_used() -> None:
    use = CpuUse()
    assert use.share_since_last([os.getpid()]) == 0.0  # the first reading has no baseline
    began = time.monotonic()
    burn(0.3)
    elapsed = time.monotonic() - began
    share = use.share_since_last([os.getpid()])
    assert share == pytest.approx(0.3 / elapsed, abs=3 * TICK_S / elapsed)
    assert use.highest == share


def test_a_process_asleep_uses_none() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            asleep(child.pid)
            use = CpuUse()
            use.share_since_last([child.pid])
            time.sleep(0.3)  # the span measured, not a wait for anything
            assert use.share_since_last([child.pid]) <= TICK_S / 0.3
        finally:
            child.kill()


def test_the_busiest_of_several_counts() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            use = CpuUse()
            use.share_since_last([child.pid, os.getpid()])
            burn(0.2)
            assert use.share_since_last([child.pid, os.getpid()]) > 0.0
        finally:
            child.kill()


def test_a_process_gone_has_used_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert cpu_seconds(child.pid) == 0.0


def test_readings_at_work_count_in_a_row_and_start_again_when_idle() -> None:
    """A child that spins is at work at every reading (runnable, or its CPU time grew);
    one asleep never is."""
    spin = [sys.executable, "-c", "while True: pass"]
    nap = [sys.executable, "-c", "import time; time.sleep(30)"]
    with subprocess.Popen(spin) as busy, subprocess.Popen(nap) as napping:
        try:
            asleep(napping.pid)
            use, idle = CpuUse(), CpuUse()
            streaks, idle_streaks = [], []
            for _ in range(3):
                streaks.append(use.readings_at_work([busy.pid], AT_WORK))
                idle_streaks.append(idle.readings_at_work([napping.pid], AT_WORK))
                time.sleep(0.05)  # the span measured, not a wait for anything
            assert streaks == [1, 2, 3]
            assert idle_streaks == [0, 0, 0]
            busy.kill()
            busy.wait()
            assert use.readings_at_work([busy.pid], AT_WORK) == 0  # gone: at work no more
        finally:
            busy.kill()
            napping.kill()
