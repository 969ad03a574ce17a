"""The rollout controller's API behind LLM_DRILL_ROLLOUT_TOKEN: it can take any worker
out of the gateways, so it is not open beyond loopback without a token."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from harness.auth import ROLLOUT_TOKEN_ENV
from harness.errors import ConfigError
from harness.rollout.server import RolloutServer, main
from tests.unit.rollout.test_controller import rig

TOKEN = "rollout-token"
CANARY = {"name": "other", "url": "http://127.0.0.1:9/",
          "stable": [{"name": "node1", "url": "http://127.0.0.1:8/"}]}


def serving(host: str, token: str | None) -> RolloutServer:
    built = rig()
    return RolloutServer(host, 0, built.controller, built.registry, token=token)


@pytest.fixture
def guarded() -> Iterator[RolloutServer]:
    server = serving("127.0.0.1", TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_non_loopback_bind_without_a_token_is_refused() -> None:
    with pytest.raises(ConfigError, match=ROLLOUT_TOKEN_ENV):
        serving("0.0.0.0", None)


def test_the_command_refuses_too(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ROLLOUT_TOKEN_ENV, raising=False)
    argv = ["--host", "0.0.0.0", "--port", "0", "--prometheus", "http://127.0.0.1:9",
            "--model", "tiny"]
    assert main(argv) == 1
    assert "refuses to bind '0.0.0.0'" in capsys.readouterr().err


def test_registering_a_canary_needs_the_token(guarded: RolloutServer) -> None:
    url = f"{guarded.url}/canaries"
    assert httpx.post(url, json=CANARY, timeout=5).status_code == 401
    assert httpx.post(url, json=CANARY, headers=bearer("wrong"), timeout=5).status_code == 403
    assert guarded.controller.status("other") is None
    assert httpx.post(url, json=CANARY, headers=bearer(TOKEN), timeout=5).status_code == 201
    assert guarded.controller.status("other") is not None


def test_reading_a_decision_needs_the_token(guarded: RolloutServer) -> None:
    url = f"{guarded.url}/canaries/canary"
    response = httpx.get(url, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert httpx.get(url, headers=bearer(TOKEN), timeout=5).json()["state"] == "analysing"


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_health_and_metrics_stay_open_for_checks_and_scrapes(guarded: RolloutServer,
                                                             path: str) -> None:
    assert httpx.get(f"{guarded.url}{path}", timeout=5).status_code == 200
