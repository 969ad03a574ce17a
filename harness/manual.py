"""The desk a manual game day and its pytest session share: one append-only event log.

In ``llm-drill gameday run --manual`` people are in the loop. Each fault waits at the
desk until the facilitator says go; responders say when they detected the fault and
when they mitigated it, and each runbook they open is noted. Both processes append one
JSON line per event to ``events.jsonl`` in the folder named by ``LLM_DRILL_MANUAL_DIR``
(one ``write(2)`` per line on an ``O_APPEND`` descriptor, so lines never interleave),
and both read it back. The drill's journal then carries the people's timings as
measurements (seconds after the fault was applied), so the history keeps them beside
the alerts' detection lags.

Without the variable there is no desk and nothing waits: drills run as always.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MANUAL_DIR_ENV = "LLM_DRILL_MANUAL_DIR"
EVENTS_FILE = "events.jsonl"
POLL_S = 0.2

CUE, GO, APPLIED, REVERTED = "cue", "go", "applied", "reverted"
DETECTED, MITIGATED, RUNBOOK = "detected", "mitigated", "runbook"
ACKS = (DETECTED, MITIGATED)


@dataclass(frozen=True)
class Event:
    """One line of the log: ``kind``, when (wall clock), which cue it belongs to (the
    fault's sequence number, for cue/go/applied/reverted), and who or what."""

    kind: str
    at: float
    seq: int = 0
    by: str = ""
    what: str = ""  # the fault (cue), the runbook (runbook), the test (cue's test)

    def line(self) -> bytes:
        return (json.dumps({"kind": self.kind, "at": self.at, "seq": self.seq,
                            "by": self.by, "what": self.what}) + "\n").encode()


class Desk:
    """The shared folder; either side appends and reads."""

    def __init__(self, folder: Path, now: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.path = folder / EVENTS_FILE
        self.now = now

    def note(self, kind: str, *, seq: int = 0, by: str = "", what: str = "") -> Event:
        event = Event(kind, self.now(), seq, by, what)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, event.line())
        finally:
            os.close(fd)
        return event

    def events(self) -> list[Event]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [Event(**json.loads(line)) for line in text.splitlines() if line.strip()]

    # -- the drill's side -----------------------------------------------------------------
    def cue(self, fault: str, test: str) -> int:
        """Announce a fault ready to be applied; its sequence number."""
        seq = 1 + max((e.seq for e in self.events() if e.kind == CUE), default=0)
        self.note(CUE, seq=seq, what=fault, by=test)
        return seq

    def wait_for_go(self, seq: int, poll_s: float = POLL_S) -> Event:
        """Block until the facilitator says go for cue ``seq``. No deadline: a person
        decides; Ctrl-C or a game-day abort (SIGINT) interrupts the wait, and the fault,
        never applied, has nothing to revert."""
        while True:
            for event in self.events():
                if event.kind == GO and event.seq == seq:
                    return event
            time.sleep(poll_s)

    def last_applied(self) -> int:
        """The newest applied fault not yet reverted (0: none)."""
        events = self.events()
        reverted = {e.seq for e in events if e.kind == REVERTED}
        return max((e.seq for e in events if e.kind == APPLIED and e.seq not in reverted),
                   default=0)

    # -- the facilitator's side -----------------------------------------------------------
    def pending(self) -> Event | None:
        """The cue waiting for a go, if any."""
        events = self.events()
        answered = {e.seq for e in events if e.kind == GO}
        waiting = [e for e in events if e.kind == CUE and e.seq not in answered]
        return waiting[0] if waiting else None

    def go(self, by: str) -> Event | None:
        """Say go to the pending cue; None when no fault waits."""
        cue = self.pending()
        return None if cue is None else self.note(GO, seq=cue.seq, by=by)


def desk_from_env() -> Desk | None:
    """The session's desk in a manual game day, else None."""
    folder = os.environ.get(MANUAL_DIR_ENV)
    return Desk(Path(folder)) if folder else None


def people_measurements(events: Iterable[Event], since: float) -> dict[str, float]:
    """The people's timings for a drill that started at ``since``, in seconds after its
    first fault was applied: first detection and mitigation acknowledged
    (``human_detected_s``, ``human_mitigated_s``), each runbook's first opening
    (``runbook_opened_s.<name>``), and how long the first fault waited for its go
    (``facilitator_wait_s``). Acknowledgements from before the fault count for nothing."""
    mine = [e for e in events if e.at >= since]
    applied = next((e for e in mine if e.kind == APPLIED), None)
    if applied is None:
        return {}
    found: dict[str, float] = {}
    cue = next((e for e in mine if e.kind == CUE and e.seq == applied.seq), None)
    go = next((e for e in mine if e.kind == GO and e.seq == applied.seq), None)
    if cue is not None and go is not None:
        found["facilitator_wait_s"] = go.at - cue.at
    for event in mine:
        if event.at < applied.at:
            continue
        key = (f"human_{event.kind}_s" if event.kind in ACKS else
               f"runbook_opened_s.{event.what}" if event.kind == RUNBOOK else None)
        if key is not None and key not in found:
            found[key] = event.at - applied.at
    return {k: round(v, 3) for k, v in found.items()}
