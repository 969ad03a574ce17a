"""An engine ping for vLLM's API server, loaded with ``--middleware``.

vLLM 0.32's ``/health`` only asks the API server whether it has seen its engine fail: an
engine that hangs (stopped, deadlocked, stuck in a collective) behind a live API server
answers 200 there, and every gateway keeps sending it requests. ``GET /health/engine``
asks the engine itself, through vLLM's own utility call (``is_sleeping``), which the
engine core answers between two steps: 200 when it answers within the timeout, 503
(saying why) when it does not. The stack's gateways check this path.

The timeout comes from ``LLM_DRILL_ENGINE_PING_TIMEOUT_S`` (set below the gateways'
health-check timeout, so a hung engine reads as a failed check, not a slow one).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

PATH = "/health/engine"
TIMEOUT_ENV = "LLM_DRILL_ENGINE_PING_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 4.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class EnginePing:
    """Pure ASGI middleware: answers ``GET /health/engine`` itself, passes everything
    else through untouched (streams included)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.timeout_s = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("path") != PATH:
            await self.app(scope, receive, send)
            return
        status, text = await self.ping(scope)
        body = text.encode() + b"\n"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def ping(self, scope: Scope) -> tuple[int, str]:
        engine = getattr(getattr(scope.get("app"), "state", None), "engine_client", None)
        if engine is None:
            return 503, "no engine client yet"
        try:
            await asyncio.wait_for(engine.is_sleeping(), self.timeout_s)
        except TimeoutError:
            return 503, f"the engine did not answer within {self.timeout_s:g}s"
        except Exception as exc:  # an engine that fails the call is not healthy either
            return 503, f"the engine's answer failed: {type(exc).__name__}"
        return 200, "the engine answered"
