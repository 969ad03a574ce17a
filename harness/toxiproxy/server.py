"""Running the fault proxy: in a coroutine, in a background thread, or as a process.

* ``await ToxiproxyServer(host, port).start()`` inside a running loop, then
  ``await server.stop()``;
* ``await serve(host, port)`` runs until cancelled;
* ``with ServerThread(port=0) as server: server.url`` runs it on its own loop
  in a daemon thread (for tests and tools that are not asyncio);
* ``python -m harness.toxiproxy --host 127.0.0.1 --port 8474`` (or
  ``llm-drill toxiproxy``) as a process; it prints ``listening on URL`` once
  the API is up.

The API binds loopback by default. ``token=`` (the process reads
``TOXIPROXY_AUTH_TOKEN``) makes every request but ``GET /metrics`` carry
``Authorization: Bearer <token>``; binding any other address without one is
refused with :class:`~harness.errors.ConfigError` (see :mod:`harness.auth`).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future

from harness.auth import TOXIPROXY_TOKEN_ENV, bind_refusal
from harness.errors import ComponentFailed, ConfigError, NotReady
from harness.toxiproxy.api import Api
from harness.toxiproxy.connection import DEAD_PEER_S, READ_BUFFER_SIZE
from harness.toxiproxy.httpd import HttpServer, guarded

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
# Prometheus scrapes these without credentials: counters only, no state changes.
OPEN_PATHS = frozenset({"/metrics"})


class ToxiproxyServer:
    """The API server and its proxies, bound to the running event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, *,
                 rng: random.Random | None = None, token: str | None = None,
                 dead_peer_s: float = DEAD_PEER_S) -> None:
        refusal = bind_refusal("the fault proxy API", host, token, TOXIPROXY_TOKEN_ENV)
        if refusal is not None:
            raise ConfigError(refusal, field="host")
        self.host = host
        self.port = port
        self.rng = rng if rng is not None else random.Random()
        # One read buffer per loop: reads are consumed before the next one.
        self._buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        self.api = Api(self.rng, self._buffer, dead_peer_s)
        self._http = HttpServer(guarded(self.api.handle, token, OPEN_PATHS))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind the API (port 0 picks a free port, see :attr:`port`)."""
        self.host, self.port = await self._http.start(self.host, self.port)

    async def stop(self) -> None:
        """Close the API, every proxy and every live connection."""
        await self._http.close()
        await self.api.close()


async def serve(host: str = "127.0.0.1", port: int = 8474, *,
                rng: random.Random | None = None, token: str | None = None,
                on_ready: Callable[[ToxiproxyServer], None] | None = None) -> None:
    """Run a server until this coroutine is cancelled."""
    server = ToxiproxyServer(host, port, rng=rng, token=token)
    await server.start()
    try:
        if on_ready is not None:
            on_ready(server)
        await asyncio.get_running_loop().create_future()
    finally:
        await server.stop()


class ServerThread:
    """A :class:`ToxiproxyServer` on its own event loop in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 rng: random.Random | None = None, token: str | None = None) -> None:
        self._server = ToxiproxyServer(host, port, rng=rng, token=token)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._ready: Future[None] = Future()

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def server(self) -> ToxiproxyServer:
        return self._server

    def start(self) -> str:
        """Start the thread; return the API URL once it is listening."""
        self._thread = threading.Thread(target=self._run, name="toxiproxy", daemon=True)
        self._thread.start()
        try:
            self._ready.result(timeout=START_TIMEOUT_S)
        except TimeoutError:
            raise NotReady("the embedded toxiproxy API", START_TIMEOUT_S) from None
        except OSError as exc:
            raise ComponentFailed("toxiproxy", f"cannot start: {exc}") from exc
        return self.url

    def stop(self) -> None:
        loop, main = self._loop, self._main
        if loop is not None and main is not None and not loop.is_closed():
            loop.call_soon_threadsafe(main.cancel)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        try:
            await self._server.start()
        except OSError as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            await self._loop.create_future()
        except asyncio.CancelledError:
            await self._server.stop()
