"""The harness' Alertmanager webhook receiver, and the facts only the harness can observe.

Run as ``python -m harness.observe.webhook --host H --port P --journal FILE
[--cgroup-root DIR]``. It serves:

* ``POST /alerts/<severity>``  Alertmanager webhook payloads; each alert of a
  notification becomes one :class:`Notification`, appended as a JSON line to
  the journal (flushed per notification, so a crash loses nothing received);
* ``GET /notifications``       every notification received (JSON list; optional
  ``alertname`` / ``status`` query filters);
* ``GET /healthz``             ``ok``;
* ``GET /metrics``             ``llmdrill_webhook_notifications_total{alertname,status}``
  and ``llmdrill_node_oom_kills_total{node}``, read on each scrape from
  ``<cgroup-root>/<node>/memory.oom_control`` (cgroup v1, line ``oom_kill N``).

Stdlib ``ThreadingHTTPServer`` only: the receiver must start in a blink and
never depend on the stack it watches.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from harness.errors import HarnessError


@dataclass(frozen=True)
class Notification:
    """One alert as delivered by Alertmanager to one receiver."""

    alertname: str
    status: str
    labels: Mapping[str, str] = field(hash=False)
    starts_at: str
    ends_at: str
    receiver: str
    received_at: float
    path: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, obj: object) -> Notification:
        if not isinstance(obj, dict):
            raise ValueError(f"not a notification: {obj!r:.200}")
        labels = obj.get("labels") or {}
        return cls(alertname=str(obj["alertname"]), status=str(obj["status"]),
                   labels={str(k): str(v) for k, v in dict(labels).items()},
                   starts_at=str(obj.get("starts_at", "")), ends_at=str(obj.get("ends_at", "")),
                   receiver=str(obj.get("receiver", "")),
                   received_at=float(obj.get("received_at", 0.0)), path=str(obj.get("path", "")))


def notifications_from_payload(payload: object, *, path: str,
                               received_at: float) -> tuple[Notification, ...]:
    """Split an Alertmanager webhook payload (version 4) into notifications."""
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        raise ValueError("not an Alertmanager webhook payload: no 'alerts' list")
    receiver = str(payload.get("receiver", ""))
    return tuple(_one(alert, receiver, path, received_at) for alert in payload["alerts"])


def _one(alert: object, receiver: str, path: str, received_at: float) -> Notification:
    if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
        raise ValueError(f"alert without labels: {alert!r:.200}")
    labels = {str(k): str(v) for k, v in alert["labels"].items()}
    return Notification(alertname=labels.get("alertname", ""),
                        status=str(alert.get("status", "")), labels=labels,
                        starts_at=str(alert.get("startsAt", "")),
                        ends_at=str(alert.get("endsAt", "")), receiver=receiver,
                        received_at=received_at, path=path)


class Journal:
    """Notifications in memory and, one JSON line each, in a file (reloaded at start)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._items: list[Notification] = list(self._load())

    def _load(self) -> Iterator[Notification]:
        if self.path is None or not self.path.exists():
            return
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield Notification.from_json(json.loads(line))

    def append(self, items: Sequence[Notification]) -> None:
        with self._lock:
            self._items.extend(items)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.writelines(n.to_json() + "\n" for n in items)

    def items(self) -> tuple[Notification, ...]:
        with self._lock:
            return tuple(self._items)


def read_oom_kills(path: Path) -> int | None:
    """The ``oom_kill`` count of a cgroup v1 ``memory.oom_control`` file, if readable."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class OOMKillCollector(Collector):
    """``llmdrill_node_oom_kills_total{node}`` for each node dir under the cgroup root."""

    def __init__(self, cgroup_root: Path | None) -> None:
        self.cgroup_root = cgroup_root

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("llmdrill_node_oom_kills",
                                     "OOM kills in the node's memory cgroup (memory.oom_control)",
                                     labels=["node"])
        for node, kills in self.read():
            family.add_metric([node], float(kills))
        yield family

    def read(self) -> list[tuple[str, int]]:
        if self.cgroup_root is None or not self.cgroup_root.is_dir():
            return []
        found = []
        for node_dir in sorted(p for p in self.cgroup_root.iterdir() if p.is_dir()):
            kills = read_oom_kills(node_dir / "memory.oom_control")
            if kills is not None:
                found.append((node_dir.name, kills))
        return found


class Receiver:
    """The receiver's state: the journal and its metrics registry."""

    def __init__(self, journal: Journal, cgroup_root: Path | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.now = now
        self.registry = CollectorRegistry()
        self.notifications = Counter("llmdrill_webhook_notifications",
                                     "Alert notifications received from Alertmanager",
                                     ["alertname", "status"], registry=self.registry)
        self.registry.register(OOMKillCollector(cgroup_root))

    def receive(self, path: str, body: bytes) -> tuple[Notification, ...]:
        payload = json.loads(body)
        items = notifications_from_payload(payload, path=path, received_at=self.now())
        self.journal.append(items)
        for item in items:
            self.notifications.labels(item.alertname, item.status).inc()
        return items

    def listing(self, query: Mapping[str, list[str]]) -> bytes:
        wanted = {k: v[-1] for k, v in query.items() if k in ("alertname", "status", "receiver")}
        items = [asdict(n) for n in self.journal.items()
                 if all(getattr(n, k) == v for k, v in wanted.items())]
        return json.dumps(items).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not path.startswith("/alerts"):
            self._send(HTTPStatus.NOT_FOUND, b"unknown path\n", "text/plain")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            items = self.server.receiver.receive(path, self.rfile.read(length))
        except (ValueError, KeyError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, f"bad payload: {exc}\n".encode(), "text/plain")
            return
        self._send(HTTPStatus.OK, json.dumps({"received": len(items)}).encode(),
                   "application/json")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        receiver = self.server.receiver
        if parts.path == "/notifications":
            self._send(HTTPStatus.OK, receiver.listing(parse_qs(parts.query)), "application/json")
        elif parts.path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain")
        elif parts.path == "/metrics":
            self._send(HTTPStatus.OK, generate_latest(receiver.registry),
                       "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"unknown path\n", "text/plain")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the journal is the log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        super().__init__(address, _Handler)
        self.receiver = receiver


class WebhookServer:
    """The receiver on a background thread (``port=0`` picks a free port)."""

    def __init__(self, host: str, port: int, receiver: Receiver) -> None:
        try:
            self._server = _Server((host, port), receiver)
        except OSError as exc:
            raise HarnessError(f"webhook receiver cannot bind {host}:{port}: {exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="llm-drill-webhook", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.observe.webhook",
                                     description="llm-drill Alertmanager webhook receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True,
                        help="JSON-lines file notifications are appended to")
    parser.add_argument("--cgroup-root", type=Path, default=None,
                        help="memory cgroup dir holding one sub-dir per node (cgroup v1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    receiver = Receiver(Journal(args.journal), args.cgroup_root)
    server = WebhookServer(args.host, args.port, receiver)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
