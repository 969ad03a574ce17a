"""A manual game day: the desk's HTTP API and keys drive a real session (a child process
whose fault waits for the go), and the people's timings land in the log."""

from __future__ import annotations

import io
import re
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from harness.clock import SystemClock
from harness.errors import ConfigError
from harness.gameday.abort import AbortWatch
from harness.gameday.day import Manual, run_with_people
from harness.gameday.desk import DeskServer, Facilitation, read_keys
from harness.gameday.plan import AbortConditions
from harness.gameday.run import PASSED, GameDayResult, Session
from harness.manual import (
    APPLIED,
    CUE,
    DETECTED,
    GO,
    MITIGATED,
    REVERTED,
    RUNBOOK,
    Desk,
    people_measurements,
)
from harness.waits import Wait

# The session's stand-in: a real fault (FaultBase) cued at the desk from the environment,
# held until a responder acknowledges detection, then reverted.
SESSION = textwrap.dedent("""\
    import pathlib
    from harness.faults.base import FaultBase
    from harness.manual import DETECTED, desk_from_env
    from harness.waits import Wait

    class Touch(FaultBase):
        def describe(self): return "touch the mark"
        def _apply(self): pathlib.Path("applied").touch()
        def _revert(self): pathlib.Path("applied").unlink()

    desk = desk_from_env()
    with Touch():
        Wait(within=60, interval=0.05).until_true(
            "a detection", lambda: any(e.kind == DETECTED for e in desk.events()))
    """)


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "NodeDown.md").write_text("# NodeDown\n\nMeaning: a node is down.\n")
    (tmp_path / "secret.md").write_text("not a runbook\n")
    return folder


def facilitation(tmp_path: Path, runbooks: Path) -> tuple[Facilitation, list[str]]:
    said: list[str] = []
    return Facilitation(Desk(tmp_path / "desk"), runbooks, said.append), said


def test_the_api_says_go_only_to_a_waiting_fault(tmp_path: Path, runbooks: Path) -> None:
    desk_side, said = facilitation(tmp_path, runbooks)
    with DeskServer(desk_side) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/go").status_code == 409
        desk_side.desk.cue("SIGKILL node1", "t")
        state = http.get("/").json()
        assert state["pending"]["what"] == "SIGKILL node1"
        went = http.post("/go", json={"by": "alice"})
        assert went.status_code == 200 and went.json()["by"] == "alice"
        assert http.get("/").json()["pending"] is None
        assert http.post("/go").status_code == 409
    assert said[-1] == "no fault is waiting"


def test_acks_and_runbooks_are_noted_and_bad_requests_are_refused(
        tmp_path: Path, runbooks: Path) -> None:
    desk_side, _ = facilitation(tmp_path, runbooks)
    with DeskServer(desk_side) as server, httpx.Client(base_url=server.url) as http:
        assert http.post("/ack/detected", json={"by": "bob"}).json()["by"] == "bob"
        assert http.post("/ack/mitigated").json()["by"] == "http"
        assert http.post("/ack/guessed").status_code == 404
        assert http.post("/ack/detected", content=b"[1]").status_code == 400
        assert http.post("/ack/detected", content=b"{").status_code == 400
        page = http.get("/runbooks/NodeDown")
        assert page.status_code == 200 and page.text.startswith("# NodeDown")
        assert http.get("/runbooks/Absent").status_code == 404
        assert http.get("/runbooks/..%2Fsecret").status_code == 404
        assert http.get("/runbooks/../secret").status_code == 404
    kinds = [(e.kind, e.by or e.what) for e in desk_side.desk.events()]
    assert kinds == [(DETECTED, "bob"), (MITIGATED, "http"), (RUNBOOK, "NodeDown")]


def test_the_desk_needs_a_token_beyond_loopback(tmp_path: Path, runbooks: Path) -> None:
    desk_side, _ = facilitation(tmp_path, runbooks)
    with pytest.raises(ConfigError, match="LLM_DRILL_DESK_TOKEN"):
        DeskServer(desk_side, host="0.0.0.0")
    with DeskServer(desk_side, token="s3cret") as server:
        assert httpx.post(f"{server.url}/ack/detected").status_code == 401
        allowed = httpx.post(f"{server.url}/ack/detected",
                             headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200


def test_the_terminal_keys_do_what_the_api_does(tmp_path: Path, runbooks: Path) -> None:
    desk_side, said = facilitation(tmp_path, runbooks)
    desk_side.desk.cue("SIGKILL node1", "t")
    read_keys(desk_side, io.StringIO("\nd\nM\nx\n"))
    assert [(e.kind, e.by) for e in desk_side.desk.events()][1:] == [
        (GO, "terminal"), (DETECTED, "terminal"), (MITIGATED, "terminal")]
    assert said[-1].startswith("unknown key 'x'")


def test_a_manual_session_waits_for_the_go_and_times_its_responders(
        tmp_path: Path, runbooks: Path) -> None:
    """The whole loop across processes: the session cues its fault and waits; nothing is
    applied until the facilitator's POST /go; a responder opens the runbook and
    acknowledges; the session then reverts and ends well."""
    said: list[str] = []
    clock = SystemClock()
    session = Session(argv=[sys.executable, "-c", SESSION], cwd=tmp_path,
                      abort_file=tmp_path / "abort.json",
                      watch=AbortWatch(AbortConditions(0.5, 10.0, 4.0), frozenset(), clock),
                      read=lambda: None, clock=clock, poll_s=0.1)
    results: list[GameDayResult] = []
    day = threading.Thread(target=lambda: results.append(run_with_people(
        session, Manual(), tmp_path / "desk", runbooks, say=said.append)))
    day.start()
    try:
        Wait(within=30, interval=0.05).until_true("the desk to open", lambda: bool(said))
        match = re.search(r"http://127\.0\.0\.1:\d+", said[0])
        assert match is not None, said[0]
        with httpx.Client(base_url=match.group(0), timeout=10) as http:
            Wait(within=60, interval=0.05).until_true(
                "the session's cue", lambda: http.get("/").json()["pending"] is not None)
            assert not (tmp_path / "applied").exists()
            assert http.post("/go", json={"by": "facilitator"}).status_code == 200
            Wait(within=30, interval=0.05).until_true(
                "the fault applied", (tmp_path / "applied").exists)
            assert http.get("/runbooks/NodeDown").status_code == 200
            assert http.post("/ack/detected", json={"by": "alice"}).status_code == 200
            Wait(within=30, interval=0.05).until_true(
                "the fault reverted", lambda: not (tmp_path / "applied").exists())
            assert http.post("/ack/mitigated", json={"by": "alice"}).status_code == 200
    finally:
        day.join(timeout=60)
    [result] = results
    assert result.outcome == PASSED
    events = Desk(tmp_path / "desk").events()
    assert [e.kind for e in events] == [CUE, GO, APPLIED, RUNBOOK, DETECTED, REVERTED,
                                        MITIGATED]
    timings = people_measurements(events, since=0.0)
    assert set(timings) == {"facilitator_wait_s", "runbook_opened_s.NodeDown",
                            "human_detected_s", "human_mitigated_s"}
    assert 0 <= timings["runbook_opened_s.NodeDown"] <= timings["human_detected_s"] \
        <= timings["human_mitigated_s"]
    assert any(line.startswith("fault 1 is ready") for line in said)
