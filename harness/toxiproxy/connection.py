"""A proxied TCP connection: two sockets, two links, one shared read buffer.

The fast path is :meth:`_Side.buffer_updated`: a read lands in the proxy's
shared 64 KiB buffer (one per event loop, reused for every read, since reads
are handled synchronously) and, with no toxic on that direction, is written
straight to the other socket. ``transport.write`` sends at once and copies
only what the kernel did not take.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import TYPE_CHECKING

from harness.toxiproxy.link import Link, set_linger_zero
from harness.toxiproxy.state import Direction

if TYPE_CHECKING:
    from harness.toxiproxy.proxy import Proxy

READ_BUFFER_SIZE = 64 * 1024
CONNECT_TIMEOUT_S = 10.0


class _Side(asyncio.BufferedProtocol):
    """The protocol of one socket (client or upstream) of a connection."""

    def __init__(self, conn: Connection, buffer: memoryview) -> None:
        self.conn = conn
        self.buffer = buffer
        self.transport: asyncio.Transport | None = None
        self.out_link: Link | None = None  # the link reading this socket
        self.in_link: Link | None = None  # the link writing to this socket
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.conn.side_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        link = self.out_link
        assert link is not None
        if link.fast:
            if not link.dest_closed:
                link.dest.write(self.buffer[:nbytes])
                link.tx += nbytes
            link.rx += nbytes
        else:
            link.feed(bytes(self.buffer[:nbytes]))

    def eof_received(self) -> bool:
        if self.out_link is not None:
            self.out_link.feed_eof()
        return True  # keep the socket open: the other direction may still write

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.dest_paused(True)

    def resume_writing(self) -> None:
        if self.in_link is not None:
            self.in_link.dest_paused(False)


class Connection:
    """A client accepted by a proxy, and its connection to the upstream."""

    def __init__(self, proxy: Proxy, buffer: memoryview, rng: random.Random) -> None:
        self.proxy = proxy
        self.rng = rng
        self._buffer = buffer
        self.client = _Side(self, buffer)
        self.upstream: _Side | None = None
        self.up: Link | None = None
        self.down: Link | None = None
        self.connect_task: asyncio.Task[None] | None = None
        self.done = False

    # -- lifecycle -------------------------------------------------------
    def side_made(self, side: _Side) -> None:
        if side is self.client:
            assert side.transport is not None
            side.transport.pause_reading()  # nothing is read before upstream is up
            self.proxy.connection_opened(self)
            loop = asyncio.get_running_loop()
            self.connect_task = loop.create_task(self._connect())
        else:
            self._wire(side)

    async def _connect(self) -> None:
        host, port = self.proxy.upstream_address()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.create_connection(self._upstream_side, host, port)
        except (OSError, TimeoutError):
            self.proxy.stats.connect_failures += 1
            self._close_client()

    def _upstream_side(self) -> _Side:
        self.upstream = _Side(self, self._buffer)
        return self.upstream

    def _close_client(self) -> None:
        transport = self.client.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def _wire(self, upstream: _Side) -> None:
        client = self.client
        if client.lost or self.done:
            assert upstream.transport is not None
            upstream.transport.close()
            return
        assert client.transport is not None and upstream.transport is not None
        self.up = Link(self, Direction.UPSTREAM, client.transport, upstream.transport)
        self.down = Link(self, Direction.DOWNSTREAM, upstream.transport, client.transport)
        client.out_link = upstream.in_link = self.up
        upstream.out_link = client.in_link = self.down
        for toxic in self.proxy.toxic_chain(Direction.UPSTREAM):
            self.up.add_stage(toxic)
        for toxic in self.proxy.toxic_chain(Direction.DOWNSTREAM):
            self.down.add_stage(toxic)
        client.transport.resume_reading()

    def side_lost(self, side: _Side) -> None:
        if side.out_link is not None:
            side.out_link.feed_eof()
        if side is self.client and self.up is None:
            self._finish()  # lost before upstream was wired
            return
        if self.client.lost and (self.upstream is None or self.upstream.lost):
            self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self.connect_task is not None:
            self.connect_task.cancel()
        for link in self.links():
            link.cancel_stages()
        self.proxy.connection_closed(self)

    # -- control ---------------------------------------------------------
    def links(self) -> list[Link]:
        return [link for link in (self.up, self.down) if link is not None]

    def link(self, direction: Direction) -> Link | None:
        return self.up if direction is Direction.UPSTREAM else self.down

    def transports(self) -> list[asyncio.Transport]:
        sides = (self.client, self.upstream)
        return [s.transport for s in sides if s is not None and s.transport is not None]

    def abort(self) -> None:
        """Close both sockets now (Toxiproxy's conn.Close() on proxy stop)."""
        if self.connect_task is not None:
            self.connect_task.cancel()
        for transport in self.transports():
            transport.abort()

    def set_linger_zero(self) -> None:
        for transport in self.transports():
            set_linger_zero(transport)

    def reset(self) -> None:
        """Reset both peers: SO_LINGER 0, then close."""
        self.set_linger_zero()
        for transport in self.transports():
            with contextlib.suppress(OSError):
                transport.abort()

    def tasks(self) -> list[asyncio.Task[None]]:
        tasks = [t for link in self.links() for t in link.tasks()]
        if self.connect_task is not None:
            tasks.append(self.connect_task)
        return tasks
