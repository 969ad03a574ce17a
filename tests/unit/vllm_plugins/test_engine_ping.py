"""The engine ping answers from the engine's own reply: 200 when it answers, 503 when it
does not within the timeout or fails; every other request passes through untouched."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from harness.vllm_plugins.engine_ping import PATH, TIMEOUT_ENV, EnginePing, Message, Scope


class Engine:
    """An engine client whose utility call answers, hangs, or fails."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.calls = 0

    async def is_sleeping(self) -> bool:
        self.calls += 1
        if self.behaviour == "hangs":
            await asyncio.Event().wait()
        if self.behaviour == "fails":
            raise RuntimeError("EngineDeadError")
        return False


class Inner:
    """The API server behind the middleware: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


def call(middleware: EnginePing, path: str, engine: Engine | None) -> tuple[int, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    app = SimpleNamespace(state=SimpleNamespace(engine_client=engine))
    scope: Scope = {"type": "http", "method": "GET", "path": path, "app": app}
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def inner() -> Inner:
    return Inner()


@pytest.fixture
def ping(inner: Inner, monkeypatch: pytest.MonkeyPatch) -> EnginePing:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    return EnginePing(inner)


def test_an_engine_that_answers_is_healthy(ping: EnginePing, inner: Inner) -> None:
    engine = Engine("answers")
    assert call(ping, PATH, engine) == (200, b"the engine answered\n")
    assert engine.calls == 1 and inner.paths == []


def test_a_hung_engine_is_unhealthy_once_the_timeout_passes(ping: EnginePing) -> None:
    began = time.monotonic()
    status, body = call(ping, PATH, Engine("hangs"))
    took = time.monotonic() - began
    assert status == 503 and b"did not answer within 0.3s" in body
    assert 0.3 <= took < 2.0


def test_an_engine_whose_answer_fails_is_unhealthy(ping: EnginePing) -> None:
    assert call(ping, PATH, Engine("fails")) == (503, b"the engine's answer failed: "
                                                     b"RuntimeError\n")


def test_before_the_engine_client_exists_it_is_unhealthy(ping: EnginePing) -> None:
    assert call(ping, PATH, None) == (503, b"no engine client yet\n")


@pytest.mark.parametrize("path", ["/health", "/v1/completions", f"{PATH}/more"])
def test_every_other_request_reaches_the_api_server(ping: EnginePing, inner: Inner,
                                                    path: str) -> None:
    engine = Engine("hangs")
    assert call(ping, path, engine) == (200, b"inner")
    assert inner.paths == [path] and engine.calls == 0
