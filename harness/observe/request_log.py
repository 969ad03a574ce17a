"""Which requests a node's engine took, from the node's own log.

The front door gives every request the stack's id (``X-Request-Id: fd-...``), the
gateways carry it, and vLLM builds its own request id from it (``cmpl-fd-...``). With
``--enable-log-requests`` and its engine logger at INFO (the stack's
``vllm-logging.json``), a node logs ``Added request <id>.`` for each request it takes:
the ids only, no prompt and no sampling parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from harness.render.run_configs import VLLM_LOGGING_FILE, VLLM_REQUEST_LOGGER

ADDED = re.compile(r"Added request (\S+?)\.?$", re.MULTILINE)


@dataclass(frozen=True)
class RequestLog:
    """The request ids one node's log says its engine took."""

    node: str
    taken: frozenset[str]
    #: What a node needs for its log to name requests.
    how_to_log: ClassVar[str] = (f"vLLM's --enable-log-requests and its logger "
                                 f"{VLLM_REQUEST_LOGGER} at INFO: the stack's {VLLM_LOGGING_FILE}")

    @classmethod
    def parse(cls, node: str, log: str) -> RequestLog:
        return cls(node, frozenset(ADDED.findall(log)))

    def took(self, stack_request_id: str | None) -> bool:
        """The node's engine took the request the stack answered with this id (vLLM's id
        contains the stack's); never for a request that has no stack id."""
        if not stack_request_id:
            return False
        return any(stack_request_id in engine_id for engine_id in self.taken)

    def not_taken(self, stack_request_ids: Iterable[str | None]) -> list[str | None]:
        return [rid for rid in stack_request_ids if not self.took(rid)]
