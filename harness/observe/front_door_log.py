"""What the front door did with each request, read from its own log.

HAProxy writes one line per request once it ends (the stack's ``log-format``): when the
request arrived (``%tr``, the front door's local time, to the millisecond), the backend
and server it used (``gateways/gateway-a``; ``<NOSRV>`` when it answered itself), its
timers (the first, ``%TR``, how long its client took to send the request's headers after
their first byte; the second, ``%Tw``, how long it waited for a gateway slot; the last,
``%Ta``, how long the request was active, ``%TR`` included), the status, the termination
state (``CD--``: the client aborted while the response was being sent), the client's own
``X-Request-Id`` (captured, ``{...}``) and the stack's request id (``id=fd-...``). A
retried request names the last server tried; a request the front door turned away itself
names ``<NOSRV>``.

Every line starts with the time HAProxy wrote it (``log ... format iso``, to the
microsecond), and HAProxy logs its own verdicts on its gateways there: ``Server
gateways/gateway-a is DOWN.`` when its health checks take one out (each check result
that changes too, ``option log-health-checks``). The time of that line is when the front
door switched, by its own account.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

LINE = re.compile(r"\[(?P<at>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] \S+ "
                  r"(?P<backend>[^/\s]+)/(?P<server>\S+) (?P<timers>\S+) (?P<status>-?\d+) "
                  r"\S+ (?P<termination>\S{4}) \S+ \S+ (?:\{(?P<client_id>[^}]*)\} )?"
                  r".* id=(?P<id>\S+)\s*$", re.M)
#: The time HAProxy wrote a line (``log ... format iso``), to the microsecond.
ISO_STAMP = r"^(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d\d:\d\d) "
SERVER = r"(?P<backend>[^/\s]+)/(?P<server>\S+)"
STATE_CHANGE = re.compile(ISO_STAMP + r"Server " + SERVER + r" is (?P<state>UP|DOWN)\b", re.M)
CHECK_FAILED = re.compile(ISO_STAMP + r"Health check for server " + SERVER + r" failed, "
                          r"reason: (?P<reason>.*?), check duration: (?P<ms>\d+)ms", re.M)
DATE_FORMAT = "%d/%b/%Y:%H:%M:%S"
#: HAProxy's termination state for a client that left while the response was being sent.
CLIENT_LEFT_MID_RESPONSE = "CD"
#: Termination states of a request the front door's admission control turned away: denied
#: by its rule (``PR``: a 429 while the queue is full) or timed out waiting for a slot
#: (``sQ``: a 503).
SHED = ("PR", "sQ")
#: The front door's termination state for a request it gave up on while waiting for its
#: server's response headers (``timeout server``): a 504 its client got, not retried.
GAVE_UP_UNANSWERED = "sH"
NO_SERVER = "<NOSRV>"


def _log_time(stamp: str) -> float:
    """``05/Dec/2026:20:44:54.290`` (the front door's local time) as epoch seconds."""
    seconds, millis = stamp.rsplit(".", 1)
    return time.mktime(time.strptime(seconds, DATE_FORMAT)) + int(millis) / 1000


@dataclass(frozen=True)
class FrontDoorRequest:
    """One request as the front door logged it."""

    request_id: str
    server: str
    status: int
    termination: str
    arrived_at: float      # epoch seconds
    ended_at: float        # arrival plus the time it was active (``%Ta``)
    queued_s: float | None = None  # waited for a gateway slot (``%Tw``); None: never queued
    client_sending_s: float = 0.0  # the client sending the request's headers (``%TR``)
    client_id: str = ""    # the client's X-Request-Id, as it sent it ("" without one)

    @property
    def handled_s(self) -> float:
        """From the whole request received to its end: the front door's own time, without
        the client's (a starved client that sends its headers seconds after its first byte
        is not a slow front door)."""
        return self.ended_at - self.arrived_at - self.client_sending_s

    @property
    def client_left_mid_response(self) -> bool:
        return self.termination.startswith(CLIENT_LEFT_MID_RESPONSE)

    @property
    def gave_up_unanswered(self) -> bool:
        """Ended by the front door's wait for its server's first answer (a 504)."""
        return self.termination.startswith(GAVE_UP_UNANSWERED)

    @property
    def shed(self) -> bool:
        """Turned away by the front door's admission control, never sent to a gateway."""
        return self.server == NO_SERVER and self.termination[:2] in SHED


def _request(match: re.Match[str]) -> FrontDoorRequest:
    arrived = _log_time(match["at"])
    timers = [int(t) for t in match["timers"].split("/")]
    sending_ms, queued_ms, active_ms = timers[0], timers[1], timers[-1]
    return FrontDoorRequest(request_id=match["id"], server=match["server"],
                            status=int(match["status"]), termination=match["termination"],
                            arrived_at=arrived, ended_at=arrived + max(active_ms, 0) / 1000,
                            queued_s=None if queued_ms < 0 else queued_ms / 1000,
                            client_sending_s=max(sending_ms, 0) / 1000,
                            client_id=match["client_id"] or "")


@dataclass(frozen=True)
class ServerStateChange:
    """The front door marking one of its servers UP or DOWN, as it logged it."""

    server: str
    state: str
    at: float  # epoch seconds


def _written_at(match: re.Match[str]) -> float:
    return datetime.fromisoformat(match["at"]).timestamp()


def _state_change(match: re.Match[str]) -> ServerStateChange:
    return ServerStateChange(server=match["server"], state=match["state"],
                             at=_written_at(match))


@dataclass(frozen=True)
class FailedCheck:
    """One of the front door's health checks of a server failing, as it logged it: why
    (``Layer4 connection problem, info: "Connection refused"``) and how long it took."""

    server: str
    at: float  # epoch seconds
    reason: str
    duration_s: float

    def describe(self, since: float) -> str:
        return f"+{self.at - since:.2f}s {self.reason} ({self.duration_s * 1000:.0f}ms)"


def _failed_check(match: re.Match[str]) -> FailedCheck:
    return FailedCheck(server=match["server"], reason=match["reason"],
                       at=_written_at(match),
                       duration_s=int(match["ms"]) / 1000)


@dataclass(frozen=True)
class FrontDoorLog:
    """Each request the front door logged, by the stack's request id, and its verdicts on
    its servers, oldest first."""

    requests: Mapping[str, FrontDoorRequest]
    state_changes: tuple[ServerStateChange, ...] = ()
    failed_checks: tuple[FailedCheck, ...] = ()

    @classmethod
    def parse(cls, log: str) -> FrontDoorLog:
        return cls({m["id"]: _request(m) for m in LINE.finditer(log)},
                   tuple(_state_change(m) for m in STATE_CHANGE.finditer(log)),
                   tuple(_failed_check(m) for m in CHECK_FAILED.finditer(log)))

    def marked(self, server: str, state: str, since: float) -> float | None:
        """When the front door first marked ``server`` ``state`` (``UP``/``DOWN``) at or
        after ``since`` (epoch), or None if its log does not say so."""
        return next((c.at for c in self.state_changes
                     if c.server == server and c.state == state and c.at >= since), None)

    def checks_failed(self, server: str, since: float) -> list[FailedCheck]:
        """The front door's failed health checks of ``server`` at or after ``since``."""
        return [c for c in self.failed_checks if c.server == server and c.at >= since]

    @property
    def server_of(self) -> Mapping[str, str]:
        """The server each request was last sent to."""
        return {rid: r.server for rid, r in self.requests.items()}

    def not_sent_to(self, server: str, stack_request_ids: Iterable[str | None]) -> list[str | None]:
        """Those of the ids the front door did not send to ``server`` (or did not log)."""
        return [rid for rid in stack_request_ids
                if rid is None or rid not in self.requests
                or self.requests[rid].server != server]

    def gave_up_unanswered(self, server: str,
                           stack_request_ids: Iterable[str | None]) -> list[str]:
        """Those of the ids whose last try went to ``server`` and that the front door gave
        up on without any answer from it."""
        return [rid for rid in stack_request_ids
                if rid is not None and rid in self.requests
                and self.requests[rid].server == server
                and self.requests[rid].gave_up_unanswered]

    def shed_ids(self) -> frozenset[str]:
        """The stack's ids of every request the front door's admission control shed."""
        return frozenset(rid for rid, r in self.requests.items() if r.shed)

    def left_mid_response(self, since: float, until: float) -> list[FrontDoorRequest]:
        """The requests that arrived between ``since`` and ``until`` (epoch) and whose
        client left while the response was being sent."""
        return [r for r in self.requests.values()
                if since <= r.arrived_at <= until and r.client_left_mid_response]

    def between(self, since: float, until: float) -> list[FrontDoorRequest]:
        """The requests that arrived between ``since`` and ``until`` (epoch), oldest first."""
        return sorted((r for r in self.requests.values() if since <= r.arrived_at <= until),
                      key=lambda r: r.arrived_at)

    def by_client_id(self, since: float, until: float) -> dict[str, list[FrontDoorRequest]]:
        """The attempts of each client request (by the id its client sent) that arrived
        between ``since`` and ``until``, oldest first; requests without one are left out."""
        attempts: dict[str, list[FrontDoorRequest]] = {}
        for request in self.between(since, until):
            if request.client_id:
                attempts.setdefault(request.client_id, []).append(request)
        return attempts
