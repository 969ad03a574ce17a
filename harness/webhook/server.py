"""The harness' Alertmanager webhook receiver, and the facts only the harness can observe.

Run as ``python -m harness.webhook.server --host H --port P --journal FILE
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

It binds loopback by default. With a token (the process reads
``LLM_DRILL_WEBHOOK_TOKEN``) every request but ``GET /healthz`` and ``GET
/metrics`` must carry ``Authorization: Bearer <token>`` (401 without, 403 with
a wrong one), so nobody can forge the notifications a drill's verdict reads;
binding any other address without a token is refused (see :mod:`harness.auth`).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, generate_latest

from harness.auth import WEBHOOK_TOKEN_ENV, token_from_env
from harness.errors import HarnessError
from harness.service import PROMETHEUS_TEXT, GuardedHandler, GuardedServer
from harness.webhook.oom import OOMKillCollector
from harness.webhook.store import Notification, NotificationLog, notifications_from_payload


class Receiver:
    """The receiver's state: the journal and its metrics registry."""

    def __init__(self, journal: NotificationLog, cgroup_root: Path | None = None,
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


class _Handler(GuardedHandler):
    server: _Server

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not self.authorized(path):
            return
        if not path.startswith("/alerts"):
            self.send_body(HTTPStatus.NOT_FOUND, b"unknown path\n", "text/plain")
            return
        try:
            items = self.server.receiver.receive(path, self.read_body())
        except (ValueError, KeyError) as exc:
            self.send_body(HTTPStatus.BAD_REQUEST, f"bad payload: {exc}\n".encode(),
                           "text/plain")
            return
        self.send_json(HTTPStatus.OK, {"received": len(items)})

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if not self.authorized(parts.path):
            return
        receiver = self.server.receiver
        if parts.path == "/notifications":
            self.send_body(HTTPStatus.OK, receiver.listing(parse_qs(parts.query)),
                           "application/json")
        elif parts.path == "/healthz":
            self.send_body(HTTPStatus.OK, b"ok\n", "text/plain")
        elif parts.path == "/metrics":
            self.send_body(HTTPStatus.OK, generate_latest(receiver.registry), PROMETHEUS_TEXT)
        else:
            self.send_body(HTTPStatus.NOT_FOUND, b"unknown path\n", "text/plain")


class _Server(GuardedServer):
    def __init__(self, address: tuple[str, int], receiver: Receiver,
                 token: str | None) -> None:
        super().__init__("the webhook receiver", address, _Handler, token, WEBHOOK_TOKEN_ENV)
        self.receiver = receiver


class WebhookServer:
    """The receiver on a background thread (``port=0`` picks a free port).

    ``token``: see the module docstring; required for a non-loopback ``host``.
    """

    def __init__(self, host: str, port: int, receiver: Receiver, *,
                 token: str | None = None) -> None:
        self._server = _Server((host, port), receiver, token)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="llm-drill-webhook", daemon=True)

    @property
    def url(self) -> str:
        return self._server.url

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
    parser = argparse.ArgumentParser(prog="python -m harness.webhook.server",
                                     description="llm-drill Alertmanager webhook receiver")
    parser.add_argument("--host", default="127.0.0.1",
                        help=f"default 127.0.0.1; any other address needs {WEBHOOK_TOKEN_ENV}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True,
                        help="JSON-lines file notifications are appended to")
    parser.add_argument("--cgroup-root", type=Path, default=None,
                        help="memory cgroup dir holding one sub-dir per node (cgroup v1)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    receiver = Receiver(NotificationLog(args.journal), args.cgroup_root)
    try:
        server = WebhookServer(args.host, args.port, receiver,
                               token=token_from_env(WEBHOOK_TOKEN_ENV))
    except HarnessError as exc:
        print(f"webhook: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
