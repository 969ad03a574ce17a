"""Tiny asyncio upstream servers on 127.0.0.1, run on a background loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
START_TIMEOUT_S = 5.0


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo everything until the client closes."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def reply_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo the first read, then close the connection."""
    data = await reader.read(65536)
    writer.write(data)
    await writer.drain()


async def source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read a decimal byte count and a newline, send that many bytes, close."""
    count = int(await reader.readline())
    block = b"x" * 65536
    while count > 0:
        writer.write(block[:count])
        count -= min(count, len(block))
        await writer.drain()


@dataclass
class TrickleConnection:
    """One connection to :class:`Trickle`: bytes sent, and when the peer closed."""

    sent: int = 0
    closed_at: float | None = None  # time.monotonic()
    closed: threading.Event = field(default_factory=threading.Event)


class Trickle:
    """Sends ``block`` every ``gap_s`` until the peer closes; records each connection."""

    def __init__(self, block: int = 1024, gap_s: float = 0.01) -> None:
        self.block = b"t" * block
        self.gap_s = gap_s
        self.connections: list[TrickleConnection] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = TrickleConnection()
        self.connections.append(conn)
        peer_closed = asyncio.ensure_future(reader.read())  # returns at EOF
        try:
            while not peer_closed.done():
                writer.write(self.block)
                await writer.drain()
                conn.sent += len(self.block)
                await asyncio.wait([peer_closed], timeout=self.gap_s)
        finally:
            peer_closed.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await peer_closed
            conn.closed_at = time.monotonic()
            conn.closed.set()


@dataclass
class HttpStats:
    connections: int = 0
    requests: list[str] = field(default_factory=list)


class HttpUpstream:
    """HTTP/1.1 keep-alive server: ``/sse?n=N&gap_ms=G`` streams SSE, else JSON."""

    def __init__(self) -> None:
        self.stats = HttpStats()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        while True:
            line = await reader.readline()
            if not line:
                return
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = header.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            target = line.decode().split(" ")[1]
            self.stats.requests.append(target)
            await self._respond(target, writer)

    async def _respond(self, target: str, writer: asyncio.StreamWriter) -> None:
        url = urlsplit(target)
        if url.path != "/sse":
            body = b'{"ok": true}'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            return
        query = parse_qs(url.query)
        count, gap = int(query.get("n", ["5"])[0]), int(query.get("gap_ms", ["0"])[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        for i in range(count):
            event = b"data: {\"i\": %d}\n\n" % i
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            if gap:
                await asyncio.sleep(gap / 1000)
        done = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        await writer.drain()


async def _guarded(handler: Handler, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
    try:
        await handler(reader, writer)
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


class Upstreams:
    """Starts handlers on free ports in a daemon thread; ``port(name)``."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self._handlers = handlers
        self._ports: dict[str, int] = {}
        self._ready: Future[None] = Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.result(timeout=START_TIMEOUT_S)

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.cancel)
        self._thread.join(START_TIMEOUT_S)

    def port(self, name: str) -> int:
        return self._ports[name]

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self._ports[name]}"

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        servers = []
        for name, handler in self._handlers.items():
            server = await asyncio.start_server(
                functools.partial(_guarded, handler), "127.0.0.1", 0)
            self._ports[name] = server.sockets[0].getsockname()[1]
            servers.append(server)
        self._ready.set_result(None)
        try:
            await self._stop
        except asyncio.CancelledError:
            for server in servers:
                server.close()
