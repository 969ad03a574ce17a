"""A real game day on the real stack, with people in the loop: two drills run to their end
and a third is interrupted mid-fault; its fault is reverted, and the partial report, the
history rows and the findings file say what happened.

The game day attaches to this session's stack (``stack: {attach: ...}``, its own home),
so no second stack starts. This test is its facilitator, through the desk's HTTP API: it
says go to each fault, and once the third fault is applied it interrupts the game day
(SIGINT, as Ctrl-C would)."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from harness.history.schema import db_path
from harness.manual import APPLIED, EVENTS_FILE, REVERTED, Desk
from harness.report.evidence import run_stack_file
from harness.stack.stack import Stack
from harness.waits import Wait

REPO = Path(__file__).resolve().parents[2]
COMPLETED = ("test_out_of_memory.py::test_oom_caps", "test_timeout_spike.py")
INTERRUPTED = "test_gateway_failover.py::test_gateway_failover[cut]"
DESK = re.compile(r"the desk is open at (http://127\.0\.0\.1:\d+)")


def write_plan(folder: Path, stack: Stack) -> Path:
    plan = {"name": "real-stack-practice", "drills_dir": str(REPO / "drills"),
            "stack": {"file": str(run_stack_file(stack.run_dir)),
                      "attach": stack.front_door_url},
            "targets": [stack.topology.host],
            "drills": [{"select": s} for s in (*COMPLETED, INTERRUPTED)],
            # the watch must not abort: this game day ends by interruption
            "abort": {"error_ratio": 1.0, "ttft_p95_s": 600, "for_s": 3600,
                      "on_unexpected_critical_alert": False}}
    path = folder / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


class GameDay:
    """``llm-drill gameday run --manual`` as a child; its output is collected as it comes."""

    def __init__(self, plan: Path, home: Path) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "--home", str(home), "gameday", "run",
             str(plan), "--manual"], cwd=REPO, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def desk_url(self) -> str:
        def found() -> str | None:
            return next((m.group(1) for line in self.lines if (m := DESK.search(line))), None)
        Wait(within=120, interval=0.2).until_true(
            "the desk to open", lambda: found() is not None or self.proc.poll() is not None)
        url = found()
        assert url is not None, "\n".join(self.lines[-30:])
        return url

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def tail(self) -> str:
        return "\n".join(self.lines[-40:])


@pytest.fixture
def game_day(tmp_path: Path, stack: Stack) -> Iterator[tuple[GameDay, Path]]:
    home = tmp_path / "home"
    day = GameDay(write_plan(tmp_path, stack), home)
    try:
        yield day, home
    finally:
        day.close()


def facilitate(day: GameDay, desk: httpx.Client) -> int:
    """Say go to each fault as it is cued; once the interrupted drill's fault is applied,
    interrupt the game day. Returns the interrupted fault's sequence number."""
    while True:
        def cued() -> bool:
            return desk.get("/").json()["pending"] is not None or day.proc.poll() is not None
        Wait(within=600, interval=0.2).until_true("a fault to be cued", cued)
        pending = desk.get("/").json()["pending"]
        assert pending is not None, f"the game day ended before its third fault:\n{day.tail()}"
        assert desk.post("/go", json={"by": "integration-test"}).status_code == 200
        if INTERRUPTED.split("::")[1] in pending["by"]:
            seq = int(pending["seq"])
            Wait(within=120, interval=0.1).until_true(
                "the third fault applied", functools.partial(was_applied, desk, seq))
            day.proc.send_signal(signal.SIGINT)
            return seq


def was_applied(desk: httpx.Client, seq: int) -> bool:
    return any(e["kind"] == APPLIED and e["seq"] == seq for e in desk.get("/").json()["events"])


@pytest.mark.stack
def test_a_game_day_interrupted_mid_fault_reverts_and_keeps_its_record(
        game_day: tuple[GameDay, Path], stack: Stack) -> None:
    day, home = game_day
    with httpx.Client(base_url=day.desk_url(), timeout=10) as desk:
        seq = facilitate(day, desk)
    code = day.proc.wait(timeout=600)
    assert code == 130, f"exit {code}, not interrupted:\n{day.tail()}"
    # the fault is reverted: by the desk's record, and gateway-a's proxy is enabled
    # again on the fault proxy's own word
    [record] = (home / "gamedays").glob(f"*/{EVENTS_FILE}")
    kinds = [(e.kind, e.seq) for e in Desk(record.parent).events()]
    assert (APPLIED, seq) in kinds and (REVERTED, seq) in kinds, kinds
    assert stack.fault_proxy.proxy("gateway-a").enabled
    journals = {j["drill"]: j for j in (json.loads(p.read_text())
                                        for p in sorted((home / "journals").glob("*.json")))}
    assert journals["gateway_failover_cut"]["outcome"] == "interrupted", day.tail()
    assert journals["oom_caps"]["outcome"] != "interrupted"
    assert journals["timeout_spike"]["outcome"] != "interrupted"
    for journal in journals.values():  # each fault waited for its go, and it shows
        applied = any(p["name"].endswith(" applied") for p in journal["phases"])
        assert applied == ("facilitator_wait_s" in journal["measurements"]), journal["drill"]
    assert "facilitator_wait_s" in journals["gateway_failover_cut"]["measurements"]
    # the partial report and the findings were written on the way out
    assert (home / "report" / "index.html").is_file(), day.tail()
    assert "gateway_failover_cut" in (home / "findings.md").read_text()
    db = sqlite3.connect(db_path(home))
    try:
        rows = dict(db.execute("SELECT drill, outcome FROM drill_runs").fetchall())
    finally:
        db.close()
    assert rows == {name: j["outcome"] for name, j in journals.items()}
