"""The base of the harness's own small HTTP services (webhook receiver, rollout
controller): a threading stdlib server that refuses a non-loopback bind without a token,
and a handler that checks the bearer token, answers JSON or text, and logs nothing.

Stdlib only: these services must start in a blink and never depend on the stack they
serve. What the token guards and how it is compared: :mod:`harness.auth`.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.auth import UNAUTHORIZED, authorization_failure, bind_refusal
from harness.errors import ConfigError, HarnessError

# Read by Prometheus' scrape and by health checks without credentials; they change nothing.
OPEN_PATHS = frozenset({"/healthz", "/metrics"})
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class GuardedServer(ThreadingHTTPServer):
    """A threading server for ``handler`` on ``address``.

    ``what`` names the service in errors; ``token_env`` is the variable whose token it
    needs to bind anything but loopback (see :func:`harness.auth.bind_refusal`).
    """

    daemon_threads = True

    def __init__(self, what: str, address: tuple[str, int],
                 handler: type[GuardedHandler], token: str | None, token_env: str) -> None:
        host, port = address
        refusal = bind_refusal(what, host, token, token_env)
        if refusal is not None:
            raise ConfigError(refusal, field="host")
        self.what, self.token = what, token
        try:
            super().__init__(address, handler)
        except OSError as exc:
            raise HarnessError(f"{what} cannot bind {host}:{port}: {exc}") from exc

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class GuardedHandler(BaseHTTPRequestHandler):
    """Every request but a GET of :data:`OPEN_PATHS` must carry the server's token."""

    server: GuardedServer

    def authorized(self, path: str) -> bool:
        """True if ``path`` may be served; else answer 401/403 and close (body unread)."""
        if self.command == "GET" and path in OPEN_PATHS:
            return True
        failure = authorization_failure(self.headers.get("Authorization") or "",
                                        self.server.token)
        if failure is None:
            return True
        self.close_connection = True
        status = HTTPStatus(failure)
        self.send_body(status, f"{status.phrase.lower()}\n".encode(), "text/plain",
                       challenge=failure == UNAUTHORIZED)
        return False

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_json(self, status: HTTPStatus, body: object) -> None:
        self.send_body(status, json.dumps(body).encode(), "application/json")

    def send_body(self, status: HTTPStatus, body: bytes, content_type: str, *,
                  challenge: bool = False) -> None:
        self.send_response(status)
        if challenge:
            self.send_header("WWW-Authenticate", f'Bearer realm="{self.server.what}"')
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: each service keeps its own record (journal, decisions, metrics)."""
