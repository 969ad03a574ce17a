from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.clients.metrics import parse_metrics
from harness.waits import Wait
from harness.webhook.oom import read_oom_kills
from harness.webhook.server import Receiver, WebhookServer
from harness.webhook.store import Notification, NotificationLog

PAYLOAD = {
    "version": "4", "groupKey": "{}:{alertname=\"NodeDown\"}", "status": "firing",
    "receiver": "harness-critical",
    "groupLabels": {"alertname": "NodeDown"}, "commonLabels": {}, "commonAnnotations": {},
    "externalURL": "http://am", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "NodeDown", "node": "node1",
                                               "severity": "critical"},
                "annotations": {"summary": "down"}, "startsAt": "2024-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "ab"}],
}


def _oom_control(kills: int) -> str:
    return f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n"


@pytest.fixture
def cgroups(tmp_path: Path) -> Path:
    root = tmp_path / "cg"
    (root / "node1").mkdir(parents=True)
    (root / "node1" / "memory.oom_control").write_text(_oom_control(0))
    (root / "node2").mkdir()
    (root / "node2" / "memory.oom_control").write_text(_oom_control(2))
    (root / "stray").mkdir()
    return root


@pytest.fixture
def server(tmp_path: Path, cgroups: Path) -> Iterator[WebhookServer]:
    receiver = Receiver(NotificationLog(tmp_path / "journal.jsonl"), cgroups, now=lambda: 42.0)
    with WebhookServer("127.0.0.1", 0, receiver) as running:
        yield running


def test_post_is_journaled_and_listed(server: WebhookServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.post("/alerts/critical", json=PAYLOAD).json() == {"received": 1}
        listed = client.get("/notifications").json()
        filtered = client.get("/notifications", params={"status": "resolved"}).json()
    (item,) = listed
    assert item["alertname"] == "NodeDown" and item["receiver"] == "harness-critical"
    assert item["received_at"] == 42.0 and item["path"] == "/alerts/critical"
    assert filtered == []
    line = (tmp_path / "journal.jsonl").read_text().splitlines()[0]
    assert Notification.from_json(json.loads(line)).labels["node"] == "node1"


def test_metrics_count_notifications_and_oom_kills(server: WebhookServer,
                                                   cgroups: Path) -> None:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        client.post("/alerts/critical", json=PAYLOAD)
        (cgroups / "node1" / "memory.oom_control").write_text(_oom_control(1))
        snap = parse_metrics(client.get("/metrics").text)
        assert client.get("/healthz").text == "ok\n"
    assert snap.total("llmdrill_webhook_notifications_total", alertname="NodeDown",
                      status="firing") == 1
    assert snap.total("llmdrill_node_oom_kills_total", node="node1") == 1
    assert snap.total("llmdrill_node_oom_kills_total", node="node2") == 2
    assert snap.get("llmdrill_node_oom_kills_total", node="stray") == ()


@pytest.mark.parametrize("body", [b"not json", b'{"alerts": "x"}', b'{"alerts": [{}]}'])
def test_bad_payload_is_400(server: WebhookServer, body: bytes) -> None:
    response = httpx.post(f"{server.url}/alerts/critical", content=body, timeout=5)
    assert response.status_code == 400


def test_journal_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    Receiver(NotificationLog(path)).receive("/alerts/warning", json.dumps(PAYLOAD).encode())
    assert [n.alertname for n in NotificationLog(path).items()] == ["NodeDown"]


def test_read_oom_kills(tmp_path: Path) -> None:
    path = tmp_path / "memory.oom_control"
    assert read_oom_kills(path) is None
    path.write_text(_oom_control(7))
    assert read_oom_kills(path) == 7


def test_runs_as_a_module(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    journal = tmp_path / "j.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness.webhook.server", "--host",
                             "127.0.0.1", "--port", str(port), "--journal", str(journal)])
    try:
        url = f"http://127.0.0.1:{port}"
        Wait(within=10, interval=0.05, transient=(httpx.TransportError,)).until_true(
            "webhook receiver up", lambda: httpx.get(f"{url}/healthz").status_code == 200)
        httpx.post(f"{url}/alerts/warning", json=PAYLOAD, timeout=5).raise_for_status()
        assert "NodeDown" in journal.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
