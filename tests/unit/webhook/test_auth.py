"""The webhook receiver behind LLM_DRILL_WEBHOOK_TOKEN, and the client that sends it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.auth import WEBHOOK_TOKEN_ENV
from harness.errors import ConfigError, Unreachable
from harness.observe.alerts import WebhookClient
from harness.webhook.server import Receiver, WebhookServer, main
from harness.webhook.store import NotificationLog
from tests.unit.webhook.test_webhook import PAYLOAD

TOKEN = "webhook-token"


def receiver(tmp_path: Path) -> Receiver:
    return Receiver(NotificationLog(tmp_path / "journal.jsonl"), None, now=lambda: 1.0)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[WebhookServer]:
    with WebhookServer("127.0.0.1", 0, receiver(tmp_path), token=TOKEN) as running:
        yield running


def post_alert(server: WebhookServer, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/alerts/critical", json=PAYLOAD, headers=headers, timeout=5)


def journal(tmp_path: Path) -> str:
    path = tmp_path / "journal.jsonl"
    return path.read_text() if path.exists() else ""


def test_non_loopback_bind_without_a_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=WEBHOOK_TOKEN_ENV):
        WebhookServer("0.0.0.0", 0, receiver(tmp_path))


def test_the_command_refuses_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(WEBHOOK_TOKEN_ENV, raising=False)
    argv = ["--host", "0.0.0.0", "--port", "0", "--journal", str(tmp_path / "j.jsonl")]
    assert main(argv) == 1
    assert "refuses to bind '0.0.0.0'" in capsys.readouterr().err


def test_non_loopback_bind_with_a_token_starts(tmp_path: Path) -> None:
    with WebhookServer("0.0.0.0", 0, receiver(tmp_path), token=TOKEN) as server:
        port = server.url.rsplit(":", 1)[1]
        url = f"http://127.0.0.1:{port}/notifications"
        assert httpx.get(url, timeout=5).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=5).status_code == 200


def test_alerts_without_a_token_are_401_and_not_journaled(
        guarded: WebhookServer, tmp_path: Path) -> None:
    response = post_alert(guarded)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert post_alert(guarded, Authorization=f"Basic {TOKEN}").status_code == 401
    assert journal(tmp_path) == ""


def test_a_wrong_token_is_403(guarded: WebhookServer, tmp_path: Path) -> None:
    assert post_alert(guarded, Authorization="Bearer wrong").status_code == 403
    assert httpx.get(f"{guarded.url}/notifications", headers={"Authorization": "Bearer x"},
                     timeout=5).status_code == 403
    assert journal(tmp_path) == ""


def test_the_right_token_is_journaled(guarded: WebhookServer, tmp_path: Path) -> None:
    assert post_alert(guarded, Authorization=f"Bearer {TOKEN}").json() == {"received": 1}
    assert "NodeDown" in journal(tmp_path)


def test_health_and_metrics_stay_open_for_scrapes(guarded: WebhookServer) -> None:
    assert httpx.get(f"{guarded.url}/healthz", timeout=5).status_code == 200
    assert httpx.get(f"{guarded.url}/metrics", timeout=5).status_code == 200


def test_the_client_sends_the_token_from_the_environment(
        guarded: WebhookServer, monkeypatch: pytest.MonkeyPatch) -> None:
    post_alert(guarded, Authorization=f"Bearer {TOKEN}")
    with httpx.Client(timeout=5) as http:
        monkeypatch.delenv(WEBHOOK_TOKEN_ENV, raising=False)
        with pytest.raises(Unreachable, match="401"):
            WebhookClient(guarded.url, http).notifications()
        monkeypatch.setenv(WEBHOOK_TOKEN_ENV, TOKEN)
        (item,) = WebhookClient(guarded.url, http).notifications()
    assert item.alertname == "NodeDown"


def test_loopback_without_a_token_stays_open(tmp_path: Path) -> None:
    with WebhookServer("127.0.0.1", 0, receiver(tmp_path)) as server:
        assert post_alert(server).json() == {"received": 1}
