"""Running a bounded load: open loop (Poisson / constant rate) or closed loop (N users).

A run stops issuing at whichever comes first: ``max_requests`` issued,
``duration_s`` passed, or :meth:`LoadRun.stop`. Requests still in flight then
get ``drain_s`` to finish and are cancelled after that (their results say
``cancelled="stopped"``). So a run never outlives ``duration_s + drain_s``.

Async drills::

    async with LoadRun(client, spec) as run:      # checks the target, starts
        ...inject a fault...
        so_far = run.results()
    summary = summarize(run.results())

Synchronous drills use :class:`BackgroundLoad` (its own loop in a thread).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

import httpx

from harness.clock import Clock, SystemClock
from harness.errors import NotReady
from harness.load.client import Requester
from harness.load.prompts import Plan, build_plan
from harness.load.result import RequestResult
from harness.load.safety import check_target, ensure_reachable
from harness.load.spec import Arrival, LoadSpec
from harness.load.stall import LoopWatch

WAIT_MARGIN_S = 10.0


class ResultSink(Protocol):
    """Receives every result as it is made (JSONL file, Prometheus exporter, ...)."""

    def record(self, result: RequestResult) -> None: ...


KEEPALIVE = 64


def make_client(spec: LoadSpec) -> httpx.AsyncClient:
    """An AsyncClient with room for every stream the spec may open at once.

    Idle keep-alive connections are capped: httpcore scans every pooled
    connection on each request, so a large idle pool costs CPU per request.

    A load that abandons its streams keeps none: every abandoned stream closes its
    connection anyway, and httpcore may open a connection for a queued request, serve
    that request on another one that came free, and pool the new one unused. A server
    closes such a connection when no request comes in time (HAProxy: ``408`` after
    ``timeout http-request``), and a request sent on it as it closes fails with no
    answer: the client's error, not the stack's (seen in a cancel storm, 6 of 100).
    """
    room = max(spec.concurrency or 0, spec.max_in_flight) + 8
    keepalive = 0 if spec.policy.cancel.after_chunks is not None else min(room, KEEPALIVE)
    limits = httpx.Limits(max_connections=room, max_keepalive_connections=keepalive)
    return httpx.AsyncClient(limits=limits, timeout=None)


#: The load thread's nice value when the process may raise its priority (root). The
#: drill's clients share a small host with the stack they test; in production they
#: run elsewhere. At the default priority a 2-core CI host left the load thread's
#: event loop without CPU for up to 12.8 s during a cancel storm (7 stalls of 2 s or
#: more, 6.1 s at most, at nice -10 against 39 at 0).
LOAD_THREAD_NICE = -10


def prioritise_this_thread() -> bool:
    """Raise the calling thread's CPU priority to LOAD_THREAD_NICE; False if not allowed."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_THREAD_NICE)
    except PermissionError:
        return False
    return True


def _gaps(spec: LoadSpec, rng: random.Random) -> Callable[[], float]:
    rate = spec.rate or 1.0
    if spec.arrival is Arrival.CONSTANT:
        return lambda: 1.0 / rate
    return lambda: rng.expovariate(rate)


class LoadRun:
    """One bounded load run on the running event loop; see the module docstring."""

    def __init__(self, client: httpx.AsyncClient, spec: LoadSpec, *,
                 sinks: Iterable[ResultSink] = (), clock: Clock | None = None,
                 run_id: str | None = None, allow_hosts: Iterable[str] = ()) -> None:
        check_target(spec.target, allow_hosts)
        self.spec, self.client = spec, client
        self.clock = clock or SystemClock()
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self._sinks = tuple(sinks)
        self.watch = LoopWatch()
        self._requester = Requester(client, spec, clock=self.clock, emit=self._record,
                                    watch=self.watch)
        self._results: list[RequestResult] = []
        self._inflight: set[asyncio.Task[RequestResult]] = set()
        self._issued = 0
        self._sent_at: dict[str, float] = {}  # in flight: request id -> when sent (wall)
        self._stopping = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[tuple[RequestResult, ...]] | None = None
        self._sink_error: Exception | None = None

    # -- public -------------------------------------------------------------------------
    def start(self) -> LoadRun:
        """Start in the background (no target probe: use ``async with`` or :meth:`preflight`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._main(), name=f"load-{self.run_id}")
        return self

    async def preflight(self) -> None:
        """Raise Unreachable naming the target if nothing answers there."""
        await ensure_reachable(self.client, self.spec.target)

    def stop(self) -> None:
        """Stop issuing; in-flight requests get ``drain_s`` to finish."""
        self._stopping = True
        self._stop.set()

    async def wait(self, within: float | None = None) -> tuple[RequestResult, ...]:
        """Wait for the run to end (default bound: duration + drain + margin)."""
        if self._task is None:
            raise RuntimeError("LoadRun.wait() before start()")
        bound = within or self.spec.duration_s + self.spec.drain_s + WAIT_MARGIN_S
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), bound)
        except TimeoutError:
            raise NotReady(f"load run {self.run_id} to end", bound,
                           f"{len(self._results)} results, {self.in_flight} in flight") from None

    def results(self) -> tuple[RequestResult, ...]:
        """Results so far, in completion order."""
        return tuple(self._results)

    @property
    def issued(self) -> int:
        return self._issued

    @property
    def in_flight(self) -> int:
        return len(self._sent_at)

    def sent_before(self, moment: float) -> int:
        """Requests in flight now that were sent before ``moment`` (wall clock)."""
        sent = tuple(self._sent_at.values())  # one step under the GIL: read from a drill's thread
        return sum(1 for at in sent if at < moment)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def __aenter__(self) -> LoadRun:
        await self.preflight()
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        await self.wait()

    # -- internals ------------------------------------------------------------------------
    def _record(self, result: RequestResult) -> None:
        self._results.append(result)
        for sink in self._sinks:
            try:
                sink.record(result)
            except Exception as exc:  # a sink failure is re-raised at the run's end
                self._sink_error = self._sink_error or exc

    def _take_index(self) -> int | None:
        if self._stopping or self._issued >= self.spec.max_requests:
            return None
        self._issued += 1
        return self._issued - 1

    def _plan(self, index: int, intended: float) -> Plan:
        return build_plan(self.spec, index, f"{self.run_id}-{index:06d}", intended)

    async def _one(self, plan: Plan) -> RequestResult:
        self._sent_at[plan.request_id] = self.clock.wall()
        try:
            return await self._requester.send(plan)
        finally:
            del self._sent_at[plan.request_id]

    async def _main(self) -> tuple[RequestResult, ...]:
        beating = asyncio.create_task(self.watch.run(), name=f"load-{self.run_id}-watch")
        try:
            await self._run_to_end()
        finally:
            beating.cancel()
        if self._sink_error is not None:
            raise self._sink_error
        return tuple(self._results)

    async def _run_to_end(self) -> None:
        deadline = self.clock.now() + self.spec.duration_s
        issuing = asyncio.create_task(self._issue(deadline))
        stopper = asyncio.create_task(self._stop.wait())
        await asyncio.wait({issuing, stopper}, timeout=self.spec.duration_s,
                           return_when=asyncio.FIRST_COMPLETED)
        self._stopping = True
        stopper.cancel()
        await self._drain(issuing)

    async def _issue(self, deadline: float) -> None:
        if self.spec.rate is not None:
            await self._open_loop(deadline)
        else:
            users = [self._user(deadline) for _ in range(self.spec.concurrency or 1)]
            await asyncio.gather(*users)

    async def _drain(self, issuing: asyncio.Task[None]) -> None:
        if self.spec.rate is not None:
            issuing.cancel()  # the open-loop scheduler holds no request itself
        pending: set[asyncio.Task[None]] | set[asyncio.Task[RequestResult]]
        waiting = {issuing, *self._inflight}
        if waiting:
            _, pending = await asyncio.wait(waiting, timeout=self.spec.drain_s)
            for task in pending:
                task.cancel()
        await asyncio.gather(issuing, *self._inflight, return_exceptions=True)

    async def _open_loop(self, deadline: float) -> None:
        gap = _gaps(self.spec, random.Random(self.spec.seed))
        slots = asyncio.Semaphore(self.spec.max_in_flight)
        intended = self.clock.now()
        while intended < deadline and not self._stopping:
            delay = intended - self.clock.now()
            if delay > 0:
                await self.clock.sleep_async(delay)
            await slots.acquire()
            if (index := self._take_index()) is None:
                break
            self._spawn(self._plan(index, intended), slots)
            intended += gap()
        if self._inflight:
            await asyncio.wait(set(self._inflight))

    def _spawn(self, plan: Plan, slots: asyncio.Semaphore) -> None:
        task = asyncio.create_task(self._one(plan))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        task.add_done_callback(lambda _: slots.release())

    async def _user(self, deadline: float) -> None:
        intended = self.clock.now()
        while self.clock.now() < deadline and (index := self._take_index()) is not None:
            await self._one(self._plan(index, intended))
            intended = self.clock.now()


async def run_load(client: httpx.AsyncClient, spec: LoadSpec, *,
                   sinks: Iterable[ResultSink] = (), clock: Clock | None = None,
                   allow_hosts: Iterable[str] = ()) -> tuple[RequestResult, ...]:
    """Probe the target, run the load to its end and return every result."""
    run = LoadRun(client, spec, sinks=sinks, clock=clock, allow_hosts=allow_hosts)
    await run.preflight()
    return await run.start().wait()


class BackgroundLoad:
    """A :class:`LoadRun` on its own event loop in a thread, for synchronous drills::

        with BackgroundLoad(spec) as load:   # probes the target, then starts
            fault.apply(); ...; fault.revert()
        results = load.results()             # the run has ended (stopped + drained)
    """

    def __init__(self, spec: LoadSpec, *, sinks: Iterable[ResultSink] = (),
                 allow_hosts: Iterable[str] = ()) -> None:
        check_target(spec.target, allow_hosts)
        self.spec, self._sinks, self._allow = spec, tuple(sinks), tuple(allow_hosts)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run: LoadRun | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._final: tuple[RequestResult, ...] | None = None
        self._thread = threading.Thread(target=self._thread_main, daemon=True,
                                        name="llm-drill-load")

    def start(self, within: float = 30.0) -> BackgroundLoad:
        """Start and wait (bounded) until the target answered and load began."""
        self._thread.start()
        if not self._started.wait(within):
            raise NotReady("background load to start", within)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._run is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._run.stop)

    def wait(self, within: float | None = None) -> tuple[RequestResult, ...]:
        bound = within or self.spec.duration_s + self.spec.drain_s + WAIT_MARGIN_S
        self._thread.join(bound)
        if self._thread.is_alive():
            raise NotReady("background load to end", bound, f"{len(self.results())} results")
        if self._error is not None:
            raise self._error
        return self.results()

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet ended (0 before the run starts or after it ends)."""
        return self._run.in_flight if self._run is not None and self._final is None else 0

    def in_flight_sent_before(self, moment: float) -> int:
        """Requests sent before ``moment`` (wall clock) and not yet ended."""
        if self._run is None or self._final is not None:
            return 0
        return self._run.sent_before(moment)

    def results(self) -> tuple[RequestResult, ...]:
        if self._final is not None:
            return self._final
        return self._run.results() if self._run is not None else ()

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        self.wait()

    def _thread_main(self) -> None:
        prioritise_this_thread()  # best effort: unprivileged, the load runs at its default
        try:
            asyncio.run(self._amain())
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
        finally:
            self._started.set()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with make_client(self.spec) as client:
            self._run = LoadRun(client, self.spec, sinks=self._sinks,
                                allow_hosts=self._allow)
            await self._run.preflight()
            self._run.start()
            self._started.set()
            self._final = await self._run.wait()
