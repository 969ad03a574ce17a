"""Two game days against the same stack at once: the second is refused, never
interleaved; the claim goes with the process that held it, however it ends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.gameday.exclusive import GameDayRunning, one_game_day_per_stack
from harness.waits import Wait

URL = "http://127.0.0.1:59999"  # a front door no real stack uses
HOLDER = ("import sys, time\n"
          "from harness.gameday.exclusive import one_game_day_per_stack\n"
          f"with one_game_day_per_stack({URL!r}):\n"
          "    print('holding', flush=True)\n"
          "    time.sleep(120)\n")


def test_a_second_game_day_on_the_same_stack_is_refused() -> None:
    with one_game_day_per_stack(URL):
        refused = r"another game day is running against the stack at http://127\.0\.0\.1:59999"
        with pytest.raises(GameDayRunning, match=refused), one_game_day_per_stack(URL + "/"):
            pass
        with one_game_day_per_stack("http://127.0.0.1:59998"):
            pass  # another stack: no conflict
    with one_game_day_per_stack(URL):
        pass  # released with the first


def test_the_claim_dies_with_a_killed_holder() -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(GameDayRunning), one_game_day_per_stack(URL):
            pass
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()

    def free() -> bool:
        try:
            with one_game_day_per_stack(URL):
                return True
        except GameDayRunning:
            return False
    Wait(within=10, interval=0.05).until_true("the claim released", free)
