"""The facilitator's desk of a manual game day (``llm-drill gameday run --manual``).

The pytest session cues each fault and waits (:mod:`harness.manual`); people answer
here, by keypress in the terminal or by HTTP, so a pager integration can acknowledge
too. The HTTP API (loopback unless ``LLM_DRILL_DESK_TOKEN`` is set, like every service
of the harness that can set a fault going)::

    GET  /                  the pending fault (if any) and every event so far
    POST /go                apply the pending fault (409 when none waits)
    POST /ack/detected      a responder saw it      body, optional: {"by": "alice"}
    POST /ack/mitigated     a responder mitigated it
    GET  /runbooks/NAME     the runbook of alert NAME (markdown), noted as opened

The terminal takes the same: Enter (go), ``d`` (detected), ``m`` (mitigated).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import asdict
from http import HTTPStatus
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from harness.manual import ACKS, APPLIED, CUE, REVERTED, RUNBOOK, Desk, Event
from harness.service import GuardedHandler, GuardedServer

DESK_TOKEN_ENV = "LLM_DRILL_DESK_TOKEN"
RUNBOOK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
KEYS = {"": "go", "d": "detected", "m": "mitigated"}


class Facilitation:
    """What either front end (HTTP, terminal) can do at the desk."""

    def __init__(self, desk: Desk, runbooks: Path, say: Callable[[str], None]) -> None:
        self.desk, self.runbooks, self.say = desk, runbooks, say

    def go(self, by: str) -> Event | None:
        event = self.desk.go(by)
        self.say("no fault is waiting" if event is None else
                 f"go for fault {event.seq} ({by}): applying it now")
        return event

    def ack(self, what: str, by: str) -> Event:
        if what not in ACKS:
            raise ValueError(f"unknown acknowledgement {what!r}: one of {', '.join(ACKS)}")
        event = self.desk.note(what, by=by)
        self.say(f"{what} ({by})")
        return event

    def runbook(self, name: str) -> str | None:
        """The runbook of alert ``name``, noted as opened; None if there is none."""
        if not RUNBOOK_NAME.fullmatch(name):
            return None
        path = self.runbooks / f"{name}.md"
        if not path.is_file():
            return None
        self.desk.note(RUNBOOK, what=name)
        return path.read_text(encoding="utf-8")

    def state(self) -> dict[str, object]:
        pending = self.desk.pending()
        return {"pending": asdict(pending) if pending else None,
                "events": [asdict(e) for e in self.desk.events()]}


class _Handler(GuardedHandler):
    server: _Server

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if not self.authorized(path):
            return
        if path == "/":
            self.send_json(HTTPStatus.OK, self.server.facilitation.state())
        elif path == "/healthz":
            self.send_body(HTTPStatus.OK, b"ok\n", "text/plain")
        elif path.startswith("/runbooks/"):
            text = self.server.facilitation.runbook(path.removeprefix("/runbooks/"))
            if text is None:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": f"no runbook at {path}"})
            else:
                self.send_body(HTTPStatus.OK, text.encode(), "text/markdown; charset=utf-8")
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown path {path}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not self.authorized(path):
            return
        try:
            by = _by(self.read_body())
        except ValueError as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        facilitation = self.server.facilitation
        if path == "/go":
            event = facilitation.go(by)
            if event is None:
                self.send_json(HTTPStatus.CONFLICT, {"error": "no fault is waiting for a go"})
            else:
                self.send_json(HTTPStatus.OK, asdict(event))
        elif path.startswith("/ack/") and path.removeprefix("/ack/") in ACKS:
            self.send_json(HTTPStatus.OK, asdict(facilitation.ack(path.removeprefix("/ack/"),
                                                                  by)))
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown path {path}"})


def _by(body: bytes) -> str:
    """Who: the body's ``by`` (a JSON object, optional); "http" when not said."""
    if not body.strip():
        return "http"
    try:
        given = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from exc
    if not isinstance(given, dict) or not isinstance(given.get("by", ""), str):
        raise ValueError('the body must be a JSON object like {"by": "alice"}')
    return str(given.get("by") or "http")[:64]


class _Server(GuardedServer):
    def __init__(self, address: tuple[str, int], facilitation: Facilitation,
                 token: str | None) -> None:
        super().__init__("the game-day desk", address, _Handler, token, DESK_TOKEN_ENV)
        self.facilitation = facilitation


class DeskServer:
    """The desk's HTTP API on a background thread, for as long as the game day runs."""

    def __init__(self, facilitation: Facilitation, host: str = "127.0.0.1", port: int = 0,
                 *, token: str | None = None) -> None:
        self._server = _Server((host, port), facilitation, token)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="gameday-desk", daemon=True)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> DeskServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def read_keys(facilitation: Facilitation, keys: TextIO, by: str = "terminal") -> None:
    """The terminal's keys, a line at a time, until the input ends: Enter is go, ``d``
    detected, ``m`` mitigated; anything else is named back."""
    for line in keys:
        action = KEYS.get(line.strip().lower())
        if action == "go":
            facilitation.go(by)
        elif action is not None:
            facilitation.ack(action, by)
        else:
            facilitation.say(f"unknown key {line.strip()!r}: Enter (go), d (detected), "
                             "m (mitigated)")


class Narrator:
    """Tells the room what the session did at the desk since the last call: a fault
    waiting for its go, applied, reverted."""

    def __init__(self, desk: Desk, url: str, say: Callable[[str], None]) -> None:
        self.desk, self.url, self.say = desk, url, say
        self._told = 0

    def __call__(self) -> None:
        events = self.desk.events()
        for event in events[self._told:]:
            line = self._line(event)
            if line is not None:
                self.say(line)
        self._told = len(events)

    def _line(self, event: Event) -> str | None:
        if event.kind == CUE:
            return (f"fault {event.seq} is ready in {event.by or 'the session'}: "
                    f"{event.what}. Enter (or POST {self.url}/go) applies it.")
        if event.kind == APPLIED:
            return (f"fault {event.seq} applied. Responders: d / m (or POST "
                    f"{self.url}/ack/detected, /ack/mitigated); runbooks at "
                    f"{self.url}/runbooks/<alert>")
        if event.kind == REVERTED:
            return f"fault {event.seq} reverted"
        return None
