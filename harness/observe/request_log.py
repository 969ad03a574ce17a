"""Which requests a node's engine took, from the node's own log.

The front door gives every request the stack's id (``X-Request-Id: fd-...``), the
gateways carry it, and vLLM builds its own request id from it (``cmpl-fd-...``). With
``--enable-log-requests`` and its engine logger at INFO (the stack's
``vllm-logging.json``), a node logs ``Added request <id>.`` for each request it takes:
the ids only, no prompt and no sampling parameters. Its engine and API server also log
the steps of a shutdown at INFO (``[shutdown] EngineCore: draining in-flight requests
count=4 ...``): when a SIGTERM's drain began, ended, and when the server went.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from harness.render.run_configs import VLLM_LOGGING_FILE, VLLM_REQUEST_LOGGER

ADDED = re.compile(r"Added request (\S+?)\.?$", re.MULTILINE)
#: ``INFO 2026-12-05 11:14:18,755 vllm.v1.engine.async_llm Added request <id>.`` (the
#: rendered vllm-logging.json's format; the node's local time)
STAMPED = re.compile(r"^\S+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ "
                     r"(Added request|Aborted request\(s\)) (.+?)\.?$", re.MULTILINE)
SHUTDOWN_STEP = re.compile(r"^\S+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ "
                           r"\[shutdown\] (.+?)$", re.MULTILINE)
STAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def _log_time(stamp: str) -> float:
    """``2026-12-05 11:14:18,755`` (local time, as Python's logging writes it) as epoch."""
    seconds, millis = stamp.split(",")
    return time.mktime(time.strptime(seconds, STAMP_FORMAT)) + int(millis) / 1000


@dataclass(frozen=True)
class RequestLog:
    """The request ids one node's log says its engine took."""

    node: str
    taken: frozenset[str]
    #: when the node took each request (its log's clock), and when it aborted each
    added_at: Mapping[str, float] = field(default_factory=dict)
    aborted_at: Mapping[str, float] = field(default_factory=dict)
    #: the steps of its shutdowns, oldest first: (when, what)
    shutdown_steps: tuple[tuple[float, str], ...] = ()
    #: What a node needs for its log to name requests.
    how_to_log: ClassVar[str] = (f"vLLM's --enable-log-requests and its logger "
                                 f"{VLLM_REQUEST_LOGGER} at INFO: the stack's {VLLM_LOGGING_FILE}")

    @classmethod
    def parse(cls, node: str, log: str) -> RequestLog:
        added: dict[str, float] = {}
        aborted: dict[str, float] = {}
        for stamp, event, ids in STAMPED.findall(log):
            at = _log_time(stamp)
            for engine_id in ids.split(", "):
                (added if event == "Added request" else aborted)[engine_id] = at
        steps = tuple((_log_time(stamp), step) for stamp, step in SHUTDOWN_STEP.findall(log))
        return cls(node, frozenset(ADDED.findall(log)), added, aborted, steps)

    def shutdown_after(self, moment: float, shown: int = 8) -> list[str]:
        """The first ``shown`` shutdown steps it logged from ``moment`` on, each with its
        time from ``moment``."""
        return [f"{at - moment:+.2f}s {step}" for at, step in self.shutdown_steps
                if at >= moment][:shown]

    def aborted_of_those_taken_before(self, moment: float, until: float) -> list[str]:
        """The requests it took before ``moment`` (wall clock) and aborted between then
        and ``until``: work it held at ``moment`` and dropped."""
        return sorted(i for i, at in self.aborted_at.items()
                      if moment <= at <= until and self.added_at.get(i, moment) < moment)

    def last_taken_at(self, before: float = math.inf) -> float | None:
        """When the node last took a request before ``before`` (its log's clock); None
        when its log names none."""
        return max((at for at in self.added_at.values() if at < before), default=None)

    def taken_between(self, start: float, end: float) -> list[str]:
        """The requests it took from ``start`` up to (not including) ``end``."""
        return sorted(i for i, at in self.added_at.items() if start <= at < end)

    def engine_ids_of(self, stack_request_id: str) -> list[str]:
        """vLLM's ids for the request the stack knows by this id (vLLM's contains the
        stack's), each with the time its engine took it."""
        return [engine_id for engine_id in self.added_at if stack_request_id in engine_id]

    def took(self, stack_request_id: str | None) -> bool:
        """The node's engine took the request the stack answered with this id (vLLM's id
        contains the stack's); never for a request that has no stack id."""
        if not stack_request_id:
            return False
        return any(stack_request_id in engine_id for engine_id in self.taken)

    def not_taken(self, stack_request_ids: Iterable[str | None]) -> list[str | None]:
        return [rid for rid in stack_request_ids if not self.took(rid)]
