"""Which gateway the front door sent each request to, read from its own log.

HAProxy writes one line per request once it ends (the stack's ``log-format``): the
backend and server it used (``gateways/gateway-a``; ``<NOSRV>`` when it answered itself)
and the stack's request id (``id=fd-...``). A retried request names the last server
tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LINE = re.compile(r"\] \S+ (?P<backend>[^/\s]+)/(?P<server>\S+) .* id=(?P<id>\S+)\s*$", re.M)


@dataclass(frozen=True)
class FrontDoorLog:
    """The server each request id was last sent to, as the front door logged it."""

    server_of: Mapping[str, str]

    @classmethod
    def parse(cls, log: str) -> FrontDoorLog:
        return cls({m["id"]: m["server"] for m in LINE.finditer(log)})

    def not_sent_to(self, server: str, stack_request_ids: Iterable[str | None]) -> list[str | None]:
        """Those of the ids the front door did not send to ``server`` (or did not log)."""
        return [rid for rid in stack_request_ids
                if rid is None or self.server_of.get(rid) != server]
