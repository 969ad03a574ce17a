"""Toxiproxy's standard toxics, with the semantics of its Go source.

Each toxic is a ``pipe(stage)`` coroutine: it reads chunks from
``stage.get()`` (``None`` = the source closed), writes with ``stage.put()``,
ends the stream with ``stage.close()``, and keeps any chunk it holds while
waiting in ``stage.pending`` so an interrupt forwards it.

Times are milliseconds unless said otherwise; bandwidth ``rate`` is KB/s with
KB = 1000 bytes (Toxiproxy's arithmetic: ``len * 1ms / rate``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.toxiproxy.link import Chunk, Stage
from harness.toxiproxy.state import Attributes, ToxicKind


@dataclass(frozen=True)
class LatencyAttributes(Attributes):
    latency: int = 0
    jitter: int = 0


@dataclass(frozen=True)
class BandwidthAttributes(Attributes):
    rate: int = 0


@dataclass(frozen=True)
class SlowCloseAttributes(Attributes):
    delay: int = 0


@dataclass(frozen=True)
class TimeoutAttributes(Attributes):
    timeout: int = 0


@dataclass(frozen=True)
class SlicerAttributes(Attributes):
    average_size: int = 0
    size_variation: int = 0
    delay: int = 0  # microseconds


@dataclass(frozen=True)
class LimitDataAttributes(Attributes):
    bytes: int = 0


async def _hold(stage: Stage, chunk: Chunk, seconds: float) -> None:
    """Keep ``chunk`` for ``seconds``; an interrupt forwards it (stage.pending)."""
    stage.pending.append(chunk)
    await asyncio.sleep(seconds)
    stage.pending.remove(chunk)


async def latency_pipe(stage: Stage) -> None:
    """Delay every chunk to ``read time + latency ± jitter``."""
    loop = asyncio.get_running_loop()
    while (chunk := await stage.get()) is not None:
        attrs = stage.toxic.attributes
        assert isinstance(attrs, LatencyAttributes)
        delay = attrs.latency
        if attrs.jitter > 0:
            delay += stage.rng.randrange(attrs.jitter * 2) - attrs.jitter
        wait = chunk.stamp + delay / 1000 - loop.time()
        if wait > 0:
            await _hold(stage, chunk, wait)
        chunk.stamp += wait
        stage.put(chunk)
    stage.close()


async def bandwidth_pipe(stage: Stage) -> None:
    """Pass at most ``rate`` KB/s; big chunks go out in 100 ms slices."""
    loop = asyncio.get_running_loop()
    debt = 0.0
    while (chunk := await stage.get()) is not None:
        attrs = stage.toxic.attributes
        assert isinstance(attrs, BandwidthAttributes)
        if attrs.rate <= 0:
            stage.put(chunk)
            debt = 0.0
            continue
        debt += len(chunk.data) / attrs.rate / 1000
        slice_size = attrs.rate * 100
        while len(chunk.data) > slice_size:
            await _hold(stage, chunk, 0.1)
            stage.put(Chunk(chunk.data[:slice_size], chunk.stamp))
            chunk.data = chunk.data[slice_size:]
            debt -= 0.1
        started = loop.time()
        await _hold(stage, chunk, max(0.0, debt))
        debt -= loop.time() - started
        stage.put(chunk)
    stage.close()


async def slow_close_pipe(stage: Stage) -> None:
    """Forward data; when the source closes, wait ``delay`` before closing."""
    while (chunk := await stage.get()) is not None:
        stage.put(chunk)
    attrs = stage.toxic.attributes
    assert isinstance(attrs, SlowCloseAttributes)
    await asyncio.sleep(attrs.delay / 1000)
    stage.close()


async def timeout_pipe(stage: Stage) -> None:
    """Drop all data; close after ``timeout`` ms without data (0 = never).

    Toxiproxy re-arms its timer on every chunk it drops, so the timeout is an
    idle timeout. Removing the toxic closes the connection (``cleanup_closes``).
    """
    attrs = stage.toxic.attributes
    assert isinstance(attrs, TimeoutAttributes)
    seconds = attrs.timeout / 1000 if attrs.timeout > 0 else None
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await stage.get()
        except TimeoutError:
            break
        if chunk is None:
            break
    stage.close()


async def reset_peer_pipe(stage: Stage) -> None:
    """On the first data (or close), wait ``timeout`` ms, then reset both peers."""
    await stage.get()
    attrs = stage.toxic.attributes
    assert isinstance(attrs, TimeoutAttributes)
    await asyncio.sleep(attrs.timeout / 1000)
    stage.closed = True
    stage.link.reset()


def slice_offsets(attrs: SlicerAttributes, stage: Stage, start: int, end: int) -> list[int]:
    """Toxiproxy's recursive halving: [start, cut1, cut1, cut2, ..., end]."""
    if (end - start) - attrs.average_size <= attrs.size_variation:
        return [start, end]
    mid = start + (end - start) // 2
    if attrs.size_variation > 0:
        mid += stage.rng.randrange(attrs.size_variation * 2) - attrs.size_variation
    return (slice_offsets(attrs, stage, start, mid)
            + slice_offsets(attrs, stage, mid, end))


async def slicer_pipe(stage: Stage) -> None:
    """Split chunks into ~``average_size`` pieces, ``delay`` µs apart."""
    while (chunk := await stage.get()) is not None:
        attrs = stage.toxic.attributes
        assert isinstance(attrs, SlicerAttributes)
        cuts = slice_offsets(attrs, stage, 0, len(chunk.data))
        pieces = [Chunk(chunk.data[cuts[i - 1]:cuts[i]], chunk.stamp)
                  for i in range(1, len(cuts), 2)]
        stage.pending.extend(pieces)
        while stage.pending:
            stage.put(stage.pending.pop(0))
            await asyncio.sleep(attrs.delay / 1_000_000)
    stage.close()


async def limit_data_pipe(stage: Stage) -> None:
    """Close the connection once ``bytes`` bytes have passed (per connection)."""
    while (chunk := await stage.get()) is not None:
        attrs = stage.toxic.attributes
        assert isinstance(attrs, LimitDataAttributes)
        remaining = max(0, attrs.bytes - stage.transmitted)
        if remaining < len(chunk.data):
            chunk.data = chunk.data[:remaining]
        if chunk.data:
            stage.put(chunk)
            stage.transmitted += len(chunk.data)
        if attrs.bytes - stage.transmitted <= 0:
            break
    stage.close()


STANDARD_KINDS: tuple[ToxicKind, ...] = (
    ToxicKind("latency", LatencyAttributes(), latency_pipe),
    ToxicKind("bandwidth", BandwidthAttributes(), bandwidth_pipe),
    ToxicKind("slow_close", SlowCloseAttributes(), slow_close_pipe),
    ToxicKind("timeout", TimeoutAttributes(), timeout_pipe, cleanup_closes=True),
    ToxicKind("reset_peer", TimeoutAttributes(), reset_peer_pipe, resets=True),
    ToxicKind("slicer", SlicerAttributes(), slicer_pipe),
    ToxicKind("limit_data", LimitDataAttributes(), limit_data_pipe),
)
