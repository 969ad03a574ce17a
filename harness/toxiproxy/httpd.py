"""A minimal HTTP/1.1 server on asyncio streams for the control API.

Requests with a Content-Length or chunked body, keep-alive, one request at a
time per connection. It serves a handful of JSON routes to test harnesses,
not the internet: no TLS, no pipelining, bounded heads and bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from harness.auth import UNAUTHORIZED, authorization_failure
from harness.toxiproxy.httpscan import chunk_size, is_decimal

MAX_HEAD_LINES = 100
MAX_BODY = 16 * 1024 * 1024
READ_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), "")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, keep_alive: bool) -> bytes:
        phrase = http.HTTPStatus(self.status).phrase
        lines = [f"HTTP/1.1 {self.status} {phrase}"]
        if self.status != 204:
            lines += [f"Content-Type: {self.content_type}", f"Content-Length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if self.status == 204 else head + self.body


Handler = Callable[[Request], Awaitable[Response]]


def auth_failure_response(status: int) -> Response:
    """401 (with the challenge RFC 9110 asks for) or 403, in Toxiproxy's error shape."""
    message = "unauthorized" if status == UNAUTHORIZED else "forbidden"
    body = json.dumps({"error": message, "status": status}).encode()
    challenge = (("WWW-Authenticate", 'Bearer realm="toxiproxy"'),)
    return Response(status, body, headers=challenge if status == UNAUTHORIZED else ())


def guarded(handler: Handler, token: str | None,
            open_paths: frozenset[str] = frozenset()) -> Handler:
    """``handler`` behind a bearer token; ``GET`` of ``open_paths`` stays open."""
    if token is None:
        return handler

    async def guard(request: Request) -> Response:
        if request.method == "GET" and request.path.split("?", 1)[0] in open_paths:
            return await handler(request)
        failure = authorization_failure(request.header("authorization"), token)
        return await handler(request) if failure is None else auth_failure_response(failure)

    return guard


class BadRequestError(Exception):
    """The control API got a request it cannot parse."""


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]] | None:
    line = await reader.readline()
    if not line:
        return None
    request_line = line.decode("latin-1").strip()
    headers: list[tuple[str, str]] = []
    for _ in range(MAX_HEAD_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return request_line, headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadRequestError(f"malformed header line {line!r}")
        headers.append((name.strip().lower(), value.strip()))
    raise BadRequestError("too many header lines")


def _chunk_size(line: bytes) -> int:
    size = chunk_size(line)
    if size is None:
        raise BadRequestError(f"malformed chunk size {line[:40]!r}")
    return size


def _content_length(request: Request) -> int:
    text = request.header("content-length") or "0"
    if not is_decimal(text):
        raise BadRequestError(f"malformed content-length {text[:40]!r}")
    return int(text)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:  # ends: every chunk grows the body, which is bounded by MAX_BODY
        size = _chunk_size(await reader.readline())
        if size == 0:
            for _ in range(MAX_HEAD_LINES):
                if (await reader.readline()) in (b"\r\n", b"\n", b""):
                    return bytes(body)
            raise BadRequestError("too many trailer lines")
        if len(body) + size > MAX_BODY:
            raise BadRequestError("body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    head = await _read_head(reader)
    if head is None:
        return None
    request_line, headers = head
    parts = request_line.split(" ")
    if len(parts) != 3:
        raise BadRequestError(f"malformed request line {request_line!r}")
    request = Request(parts[0].upper(), parts[1], tuple(headers), b"")
    if "chunked" in request.header("transfer-encoding").lower():
        body = await _read_chunked(reader)
    else:
        length = _content_length(request)
        if length > MAX_BODY:
            raise BadRequestError("body too large")
        body = await reader.readexactly(length) if length else b""
    return Request(request.method, request.path, request.headers, body)


class HttpServer:
    """Serves ``handler`` on host:port until :meth:`close`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for writer in list(self._writers):
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except (BadRequestError, ValueError) as exc:
            with contextlib.suppress(ConnectionError):
                writer.write(Response(400, str(exc).encode(), "text/plain").encode(False))
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            async with asyncio.timeout(READ_TIMEOUT_S):
                request = await read_request(reader)
            if request is None:
                return
            response = await self._handler(request)
            keep_alive = request.header("connection").lower() != "close"
            writer.write(response.encode(keep_alive))
            await writer.drain()
            if not keep_alive:
                return
