"""One direction of one proxied connection, and the toxic pipeline inside it.

A :class:`Link` copies bytes from a source socket to a destination socket.
With no toxic on its direction it is in *fast mode*: the receiving protocol
writes each read straight to the destination transport (no copy, no task).
As soon as a toxic is added the link grows a pipeline, like Toxiproxy's
``ToxicLink``::

    source ─► head queue ─► stage(toxic 1) ─► queue ─► stage(toxic 2) ─► Sink ─► dest

Each :class:`Stage` is a task running its toxic's ``pipe`` coroutine. A toxic
that holds data (latency, bandwidth, slicer, stalls) keeps it in
``stage.pending`` so that interrupting the stage (to update or remove the
toxic) forwards it instead of dropping it, as Toxiproxy's toxics do. New
toxics go at the end of the chain; removing the last toxic returns the link to
fast mode once the pipeline is empty (all writes to the sink are synchronous,
so "empty" is exact).

Back-pressure: the link pauses reading its source when the destination
transport asks it to (``pause_writing``) or when more than ``HIGH_WATER``
bytes wait in its queues, and resumes below ``LOW_WATER``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from harness.toxiproxy.state import Direction, ToxicState

if TYPE_CHECKING:
    from harness.toxiproxy.connection import Connection

log = logging.getLogger(__name__)

HIGH_WATER = 1 << 20
LOW_WATER = 1 << 18


class Chunk:
    """Bytes read from the source and the loop time they were read at."""

    __slots__ = ("data", "stamp")

    def __init__(self, data: bytes, stamp: float) -> None:
        self.data = data
        self.stamp = stamp


class Outlet(Protocol):
    """Where a stage writes: the next stage's queue or the sink."""

    def put(self, chunk: Chunk | None) -> None: ...


class ChunkQueue:
    """An unbounded FIFO of chunks; ``None`` marks the end of the stream.

    Bytes waiting in every queue of a link are counted on the link for
    back-pressure.
    """

    __slots__ = ("_items", "_link", "_waiter")

    def __init__(self, link: Link) -> None:
        self._items: deque[Chunk | None] = deque()
        self._link = link
        self._waiter: asyncio.Future[None] | None = None

    def put(self, chunk: Chunk | None) -> None:
        self._items.append(chunk)
        if chunk is not None:
            self._link.queued_bytes(len(chunk.data))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Chunk | None:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._items.popleft()
        if chunk is not None:
            self._link.queued_bytes(-len(chunk.data))
        return chunk

    def take_all(self) -> list[Chunk | None]:
        """Empty the queue (used when a stage is removed)."""
        items = list(self._items)
        self._items.clear()
        for chunk in items:
            if chunk is not None:
                self._link.queued_bytes(-len(chunk.data))
        return items

    def __len__(self) -> int:
        return len(self._items)


class Sink:
    """The end of a pipeline: writes to the destination transport."""

    __slots__ = ("_link",)

    def __init__(self, link: Link) -> None:
        self._link = link

    def put(self, chunk: Chunk | None) -> None:
        link = self._link
        if chunk is None:
            link.close_dest()
        elif not link.dest_closed:
            link.dest.write(chunk.data)
            link.tx += len(chunk.data)


Pipe = Callable[["Stage"], Awaitable[None]]


class Stage:
    """One toxic running on one link: its queue, its output and its state."""

    def __init__(self, link: Link, toxic: ToxicState, inq: ChunkQueue, out: Outlet) -> None:
        self.link = link
        self.toxic = toxic
        self.inq = inq
        self.out = out
        self.pending: list[Chunk] = []
        self.closed = False
        self.active = False
        self.transmitted = 0  # limit_data's per-connection state, kept across updates
        self.task: asyncio.Task[None] | None = None

    @property
    def rng(self) -> random.Random:
        return self.link.conn.rng

    def start(self) -> None:
        """Draw toxicity (once per run, like Toxiproxy's ToxicStub.Run) and run."""
        self.active = self.rng.random() < self.toxic.toxicity
        kind = self.toxic.kind
        pipe = kind.pipe if (self.active or kind.per_request) else noop_pipe
        self.task = asyncio.get_running_loop().create_task(self._run(pipe))

    async def _run(self, pipe: Pipe) -> None:
        try:
            await pipe(self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("toxic %s failed; closing the connection", self.toxic.name)
            self.link.conn.abort()

    async def get(self) -> Chunk | None:
        return await self.inq.get()

    def put(self, chunk: Chunk) -> None:
        if not self.closed:
            self.out.put(chunk)

    def close(self) -> None:
        """End the stream after this stage (Toxiproxy's ``stub.Close()``)."""
        if not self.closed:
            self.closed = True
            self.out.put(None)

    def flush_pending(self) -> None:
        pending, self.pending = self.pending, []
        for chunk in pending:
            self.put(chunk)

    async def interrupt(self) -> None:
        """Stop the running toxic and forward whatever it was holding."""
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        self.flush_pending()


async def noop_pipe(stage: Stage) -> None:
    """Forward everything unchanged (a toxic that lost its toxicity draw)."""
    while True:
        chunk = await stage.get()
        if chunk is None:
            stage.close()
            return
        stage.put(chunk)


class Link:
    """One direction (upstream or downstream) of a proxied connection."""

    def __init__(self, conn: Connection, direction: Direction,
                 source: asyncio.Transport, dest: asyncio.Transport) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.sink = Sink(self)
        self.stages: list[Stage] = []
        self.head: Outlet = self.sink
        self.fast = True
        self.rx = 0
        self.tx = 0
        self.buffered = 0
        self.eof = False
        self.dest_closed = False
        self.dest_held = False  # hold_upstream: ignore closes until the hold is released
        self._paused_by_dest = False
        self._paused_by_buffer = False
        self._reading_paused = False

    # -- data in ---------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Slow path: a read enters the pipeline (the fast path is inlined)."""
        self.rx += len(data)
        self.head.put(Chunk(data, asyncio.get_running_loop().time()))

    def feed_eof(self) -> None:
        if self.eof:
            return
        self.eof = True
        self.head.put(None)

    # -- data out --------------------------------------------------------
    def close_dest(self) -> None:
        if not self.dest_closed and not self.dest_held:
            self.dest_closed = True
            self.dest.close()

    def reset(self) -> None:
        """Close both sockets with SO_LINGER 0 so each peer sees a TCP RST."""
        self.conn.reset()

    # -- flow control ----------------------------------------------------
    def queued_bytes(self, delta: int) -> None:
        self.buffered += delta
        if delta > 0 and self.buffered > HIGH_WATER and not self._paused_by_buffer:
            self._paused_by_buffer = True
            self._update_reading()
        elif delta < 0 and self._paused_by_buffer and self.buffered < LOW_WATER:
            self._paused_by_buffer = False
            self._update_reading()

    def dest_paused(self, paused: bool) -> None:
        self._paused_by_dest = paused
        self._update_reading()

    def _update_reading(self) -> None:
        want = self._paused_by_dest or self._paused_by_buffer
        if want == self._reading_paused or self.source.is_closing():
            return
        self._reading_paused = want
        if want:
            self.source.pause_reading()
        else:
            self.source.resume_reading()

    # -- the toxic chain -------------------------------------------------
    def add_stage(self, toxic: ToxicState) -> None:
        """Append a toxic to this live link (Toxiproxy's ToxicLink.AddToxic)."""
        if toxic.kind.resets:
            self.conn.set_linger_zero()
        inq = ChunkQueue(self)
        stage = Stage(self, toxic, inq, self.sink)
        if self.stages:
            self.stages[-1].out = inq
        else:
            self.head = inq
        self.stages.append(stage)
        self.fast = False
        stage.start()

    def _find(self, toxic: ToxicState) -> int:
        for index, stage in enumerate(self.stages):
            if stage.toxic is toxic:
                return index
        return -1

    async def update_stage(self, toxic: ToxicState) -> None:
        """Restart a toxic with new attributes (and a new toxicity draw)."""
        index = self._find(toxic)
        if index < 0:
            return
        stage = self.stages[index]
        await stage.interrupt()
        if not stage.closed:
            stage.start()
        self.conn.toxic_updated(toxic)

    async def remove_stage(self, toxic: ToxicState) -> None:
        """Take a toxic out of this live link without losing or reordering data."""
        index = self._find(toxic)
        if index < 0:
            return
        stage = self.stages[index]
        await stage.interrupt()
        if toxic.kind.cleanup_closes:
            stage.close()  # the timeout toxic closes held connections on removal
        for chunk in stage.inq.take_all():
            if chunk is None:
                stage.close()
            else:
                stage.put(chunk)
        index = self._find(toxic)  # the chain may have changed while we waited
        del self.stages[index]
        if index > 0:
            self.stages[index - 1].out = stage.out
        else:
            self.head = stage.out
        self.fast = not self.stages
        self.conn.toxic_removed(toxic)

    def cancel_stages(self) -> None:
        for stage in self.stages:
            if stage.task is not None:
                stage.task.cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        return [s.task for s in self.stages if s.task is not None]


def set_linger_zero(transport: asyncio.BaseTransport) -> None:
    """Make close() send RST instead of FIN (Toxiproxy's SetLinger(0))."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
