"""When the fault proxy opened and closed each proxy's listener, read from its own log.

Toxiproxy logs one JSON line as it starts a proxy (``Started proxy``) and one as it
terminates it (``Terminated proxy``): its listener closed, its connections cut. The
project's own proxy logs the same lines, stamped to the microsecond. A fault that disables
a proxy takes effect at its ``Terminated proxy`` line, however long the API took to say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

TERMINATED = "Terminated proxy"


@dataclass(frozen=True)
class ProxyEvent:
    """One proxy's listener opened or closed, as the fault proxy logged it."""

    proxy: str
    message: str
    at: float  # epoch seconds


def _event(line: str) -> ProxyEvent | None:
    try:
        entry = json.loads(line)
        return ProxyEvent(proxy=str(entry["name"]), message=str(entry["message"]),
                          at=datetime.fromisoformat(str(entry["time"])).timestamp())
    except (ValueError, KeyError, TypeError):
        return None  # not one of its event lines


def parse_events(log: str) -> list[ProxyEvent]:
    """Every start and stop the log holds, oldest first; other lines are skipped."""
    return [event for line in log.splitlines() if line.startswith("{")
            for event in [_event(line)] if event is not None]


def terminated_at(log: str, proxy: str, since: float) -> float | None:
    """When the fault proxy first closed ``proxy``'s listener at or after ``since``
    (epoch), or None if its log does not say so."""
    return next((e.at for e in parse_events(log)
                 if e.proxy == proxy and e.message == TERMINATED and e.at >= since), None)
