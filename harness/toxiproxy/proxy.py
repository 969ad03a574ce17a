"""A proxy: a listener, its upstream, its toxic chains and live connections.

Semantics follow Toxiproxy's ``proxy.go``: ``listen`` is rewritten to the
address actually bound (port 0 picks a free port); disabling a proxy closes
its listener and every live connection; changing ``listen`` or ``upstream``
restarts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.toxiproxy.apierror import ApiError
from harness.toxiproxy.connection import DEAD_PEER_S, Connection
from harness.toxiproxy.state import Direction, JsonObject, ToxicState

BACKLOG = 1024
#: A proxy's listener opening and closing, one JSON line each, as Toxiproxy logs them
#: (``Started proxy``, ``Terminated proxy``), stamped to the microsecond: when a fault that
#: disables a proxy took effect, by the proxy's own account (the CLI prints them).
events = logging.getLogger("harness.toxiproxy.events")
STARTED, TERMINATED = "Started proxy", "Terminated proxy"


@dataclass
class ProxyStats:
    """Counters of finished connections; live ones are added at scrape time."""

    received: list[int] = field(default_factory=lambda: [0, 0])  # by Direction
    sent: list[int] = field(default_factory=lambda: [0, 0])
    connections_total: int = 0
    connect_failures: int = 0
    injections: dict[tuple[str, str], int] = field(default_factory=dict)

    def injected(self, toxic: ToxicState) -> None:
        key = (toxic.name, toxic.kind.name)
        self.injections[key] = self.injections.get(key, 0) + 1


def split_host_port(address: str) -> tuple[str, int]:
    """'127.0.0.1:80', '[::1]:80', ':80', 'localhost:0' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ApiError(f"address {address}: missing port in address", 500)
    return host.strip("[]"), int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalize_listen(address: str) -> str:
    """Resolve like Go's ResolveTCPAddr, enough to compare listen addresses."""
    host, port = split_host_port(address)
    if host == "localhost":
        host = "127.0.0.1"
    return join_host_port(host or "0.0.0.0", port)


class Proxy:
    """One named proxy (all methods run on the server's event loop)."""

    def __init__(self, name: str, listen: str, upstream: str, *,
                 buffer: memoryview, rng: random.Random,
                 dead_peer_s: float = DEAD_PEER_S) -> None:
        self.name = name
        self.dead_peer_s = dead_peer_s  # 0: a dead upstream holds its client (Toxiproxy's way)
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.chains: tuple[list[ToxicState], list[ToxicState]] = ([], [])
        self.connections: set[Connection] = set()
        self.stats = ProxyStats()
        self.lock = asyncio.Lock()
        self._buffer = buffer
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._orphans: set[asyncio.Task[None]] = set()

    def to_json(self) -> JsonObject:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics()],
        }

    # -- toxics ------------------------------------------------------------
    def toxics(self) -> list[ToxicState]:
        """Upstream chain first, then downstream, like GetToxicArray."""
        return [*self.chains[0], *self.chains[1]]

    def toxic_chain(self, direction: Direction) -> list[ToxicState]:
        return self.chains[direction]

    def find_toxic(self, name: str) -> ToxicState | None:
        return next((t for t in self.toxics() if t.name == name), None)

    def add_toxic(self, toxic: ToxicState) -> None:
        self.chains[toxic.stream].append(toxic)
        for conn in list(self.connections):
            link = conn.link(toxic.stream)
            if link is not None:
                link.add_stage(toxic)

    async def update_toxic(self, toxic: ToxicState) -> None:
        await self._each_link(toxic, "update")

    async def remove_toxic(self, toxic: ToxicState) -> None:
        self.chains[toxic.stream].remove(toxic)
        await self._each_link(toxic, "remove")

    async def _each_link(self, toxic: ToxicState, action: str) -> None:
        links = [c.link(toxic.stream) for c in list(self.connections)]
        await asyncio.gather(*(
            link.update_stage(toxic) if action == "update" else link.remove_stage(toxic)
            for link in links if link is not None))

    # -- listener ----------------------------------------------------------
    def upstream_address(self) -> tuple[str, int]:
        return split_host_port(self.upstream)

    async def start(self) -> None:
        if self.enabled:
            return
        host, port = split_host_port(normalize_listen(self.listen))
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._accept, host, port, backlog=BACKLOG,
                reuse_address=True, family=socket.AF_UNSPEC)
        except OSError as exc:
            raise ApiError(f"listen tcp {self.listen}: {exc.strerror or exc}", 500) from exc
        bound = self._server.sockets[0].getsockname()
        self.listen = join_host_port(str(bound[0]), int(bound[1]))
        self.enabled = True
        self._log_event(STARTED)

    def _log_event(self, message: str) -> None:
        events.info(json.dumps({
            "time": datetime.now(UTC).isoformat(timespec="microseconds"), "level": "info",
            "name": self.name, "proxy": self.listen, "upstream": self.upstream,
            "message": message}))

    def _accept(self) -> asyncio.BufferedProtocol:
        conn = Connection(self, self._buffer, self._rng)
        return conn.client

    async def stop(self) -> None:
        """Close the listener and every live connection."""
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._log_event(TERMINATED)
        for conn in list(self.connections):
            conn.abort()
        await self.wait_idle()

    async def wait_idle(self, within: float = 5.0) -> None:
        """Wait (bounded) for aborted connections to finish their callbacks."""
        tasks = [t for c in self.connections for t in c.tasks()] + list(self._orphans)
        if tasks:
            await asyncio.wait(tasks, timeout=within)
        if self.connections:
            await asyncio.sleep(0)  # connection_lost callbacks run on the next tick

    # -- bookkeeping (called by Connection) ---------------------------------
    def connection_opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.stats.connections_total += 1

    def connection_closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for link in conn.links():
            self.stats.received[link.direction] += link.rx
            self.stats.sent[link.direction] += link.tx
        for task in conn.tasks():
            if not task.done():
                self._orphans.add(task)
                task.add_done_callback(self._orphans.discard)

    def bytes_by_direction(self) -> tuple[list[int], list[int]]:
        received, sent = list(self.stats.received), list(self.stats.sent)
        for conn in self.connections:
            for link in conn.links():
                received[link.direction] += link.rx
                sent[link.direction] += link.tx
        return received, sent
