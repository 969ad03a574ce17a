"""A proxied TCP connection: two sockets, two links, one shared read buffer.

The fast path is :meth:`_Side.buffer_updated`: a read lands in the proxy's
shared 64 KiB buffer (one per event loop, reused for every read, since reads
are handled synchronously) and, with no toxic on that direction, is written
straight to the other socket. ``transport.write`` sends at once and copies
only what the kernel did not take.

A client's close normally reaches the upstream as soon as the upstream
pipeline has flushed. With an active ``hold_upstream`` toxic on the downstream
chain, the connection *holds* the upstream instead: the client's socket is
closed, the upstream one stays open and whatever it sends is read and dropped,
until it closes by itself, ``max_hold`` ms pass or the toxic is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from typing import TYPE_CHECKING

from harness.toxiproxy.link import Link, set_linger_zero
from harness.toxiproxy.llm import HoldUpstreamAttributes
from harness.toxiproxy.state import Direction, ToxicState

if TYPE_CHECKING:
    from harness.toxiproxy.proxy import Proxy

READ_BUFFER_SIZE = 64 * 1024
CONNECT_TIMEOUT_S = 5.0  # an upstream that accepts nothing this long is unreachable
# A dead path to the upstream (a partitioned or frozen host: packets go nowhere, nothing
# is refused) is found by the kernel and the connection ends, as a service mesh's
# sidecar does it, instead of holding the client until its own timeout: data unanswered
# for ``dead_peer_s`` (the server's ``--dead-peer-s``, DEAD_PEER_S by default; 0 turns
# it off, as the real Toxiproxy has it), or an idle connection whose keepalive probes go
# unanswered (KEEPALIVE_IDLE_S, then KEEPALIVE_PROBES probes KEEPALIVE_INTERVAL_S apart).
# A busy but live upstream answers both from its kernel, however slow its application.
DEAD_PEER_S = 5.0
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 2, 1, 3


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
        if self is self.conn.client:
            self.conn.client_left()
        else:
            self.conn.release_hold()  # a held upstream closed by itself
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
        self.held_by: ToxicState | None = None  # the hold_upstream toxic holding the upstream
        self._held_at = 0.0
        self._hold_timer: asyncio.TimerHandle | None = None

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

    @staticmethod
    def detect_dead_peer(transport: asyncio.BaseTransport, dead_peer_s: float) -> None:
        """Keepalive probes and a user timeout of ``dead_peer_s`` on the upstream socket
        (Linux); nothing when ``dead_peer_s`` is 0."""
        sock = transport.get_extra_info("socket")
        if sock is None or dead_peer_s <= 0:
            return
        options = ((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                   (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), KEEPALIVE_IDLE_S),
                   (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None),
                    KEEPALIVE_INTERVAL_S),
                   (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_PROBES),
                   (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None),
                    int(dead_peer_s * 1000)))
        for level, option, value in options:
            if option is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(level, option, value)

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
        self.detect_dead_peer(upstream.transport, self.proxy.dead_peer_s)
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
        if side is self.client:
            self.client_left()
        else:
            self.release_hold()
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
        self._end_hold()
        if self.connect_task is not None:
            self.connect_task.cancel()
        for link in self.links():
            link.cancel_stages()
        self.proxy.connection_closed(self)

    # -- hold_upstream -------------------------------------------------
    def client_left(self) -> None:
        """The client sent FIN or went away: hold the upstream if a toxic says so.

        Called before the close enters the upstream link, so the sink's close
        of the upstream socket is suppressed (``Link.dest_held``).
        """
        up, down = self.up, self.down
        if self.done or self.held_by is not None or up is None or down is None:
            return
        stage = next((s for s in down.stages if s.active and s.toxic.kind.holds_upstream), None)
        if stage is None:
            return
        self.held_by = stage.toxic
        self._held_at = asyncio.get_running_loop().time()
        up.dest_held = True
        down.close_dest()  # the client is gone: the sink drops what the upstream sends
        down.dest_paused(False)  # and the upstream is read even if the client was slow
        self.proxy.stats.injected(stage.toxic)
        self._arm_hold_timer()

    def _arm_hold_timer(self) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        toxic = self.held_by
        assert toxic is not None
        attrs = toxic.attributes
        assert isinstance(attrs, HoldUpstreamAttributes)
        if attrs.max_hold > 0:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._held_at + attrs.max_hold / 1000 - loop.time())
            self._hold_timer = loop.call_later(delay, self.release_hold)

    def toxic_updated(self, toxic: ToxicState) -> None:
        """A new ``max_hold`` counts from the start of the hold."""
        if toxic is self.held_by and not self.done:
            self._arm_hold_timer()

    def toxic_removed(self, toxic: ToxicState) -> None:
        if toxic is self.held_by:
            self.release_hold()

    def release_hold(self) -> None:
        """Close a held upstream (it closed, ``max_hold`` elapsed, the toxic was removed)."""
        if self.held_by is None:
            return
        self._end_hold()
        if self.up is not None:
            self.up.dest_held = False
            self.up.close_dest()

    def _end_hold(self) -> None:
        self.held_by = None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

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
