"""What drills read off the stack directly: gateway and front-door views, node counters,
and single requests. Everything waits with a deadline and fails the drill by name.

A value that cannot be read is never read as zero: :func:`metric_total` raises
:class:`ProbeError` (URL and metric). A property awaited in vain fails the drill
(:func:`await_property`); a precondition awaited in vain makes it INCONCLUSIVE with
what it saw (:func:`await_precondition`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

import httpx

from harness.clients.metrics import histogram_buckets, scrape
from harness.drill.run import DrillRun
from harness.errors import NotReady, ProbeError, Unreachable
from harness.faults.process import Observed
from harness.load.result import RequestResult
from harness.load.sse import stream_chunks
from harness.observe.fault_proxy_log import terminated_at
from harness.observe.front_door_log import FrontDoorLog
from harness.observe.recovery import time_to_recover
from harness.observe.request_log import RequestLog
from harness.stack.processes import CpuUse
from harness.waits import Probe, Wait


def worker_url(drill: DrillRun, node: str) -> str:
    """The URL gateways know a node by (through the fault proxy)."""
    return drill.stack.node_proxied_url(node)


def gateways_see(drill: DrillRun, node: str) -> dict[str, float | None]:
    """Each gateway's vllm_router_worker_health for ``node`` (None when not listed)."""
    url = worker_url(drill, node)
    seen: dict[str, float | None] = {}
    for gw in drill.stack.gateway_names:
        snap = scrape(drill.http, drill.stack.gateway_metrics_url(gw))
        seen[gw] = snap.maximum("vllm_router_worker_health", worker=url)
    return seen


def every_gateway_sees(drill: DrillRun, node: str, *, healthy: bool) -> bool:
    """Every gateway's own ``vllm_router_worker_health`` for ``node``'s worker reads
    healthy (1) or, with ``healthy=False``, out of rotation (0)."""
    want = 1 if healthy else 0
    return all(v == want for v in gateways_see(drill, node).values())


def front_door_state(drill: DrillRun, gateway: str) -> str:
    t = drill.stack.topology
    snap = scrape(drill.http, t.url(t.front_door.stats_port, "/metrics"))
    for sample in snap.get("haproxy_server_status", server=gateway):
        if sample.value == 1:
            return sample.labels.get("state", "?")
    return "absent"


def metric_total(client: httpx.Client, url: str, metric: str) -> float:
    """The sum of ``metric``'s samples on the page at ``url``; ProbeError when absent."""
    snap = scrape(client, url)
    value = snap.total(metric)
    if value is None:
        names = sorted({s.name for s in snap.samples})
        raise ProbeError(url, metric, f"absent from the page ({len(names)} other metrics)")
    return value


def node_counter(drill: DrillRun, node: str, metric: str) -> float:
    """A vLLM node's own ``metric`` (summed over engines); ProbeError when absent."""
    topology = drill.stack.topology
    return metric_total(drill.http, topology.node_url(node, "/metrics"), metric)


ENGINE_TTFT = "vllm:time_to_first_token_seconds"
PROXY_SENT_BYTES = "toxiproxy_proxy_sent_bytes_total"
# The fault proxy relays every stream; on a saturated 2-core host its /metrics took
# over 2 s in CI (the node-restart drill errored on a read timeout).
PROXY_SCRAPE_TIMEOUT_S = 10.0


def engine_ttft_buckets(drill: DrillRun) -> dict[float, float]:
    """vLLM's own time-to-first-token histogram, summed over the stack's nodes: what the
    engines measured, which no stall of the harness can stretch. ProbeError when a node
    does not expose it."""
    total: dict[float, float] = {}
    topology = drill.stack.topology
    for node in drill.stack.node_names:
        url = topology.node_url(node, "/metrics")
        buckets = histogram_buckets(scrape(drill.http, url), ENGINE_TTFT)
        if not buckets:
            raise ProbeError(url, f"{ENGINE_TTFT}_bucket", "absent from the page")
        for bound, count in buckets.items():
            total[bound] = total.get(bound, 0.0) + count
    return total


def bytes_answered_by(drill: DrillRun, node: str) -> float:
    """Bytes ``node`` has sent back through the stack's fault proxy (the proxy's own
    ``toxiproxy_proxy_sent_bytes_total``, downstream); ProbeError when the proxy does not count
    ``node``. Unlike vLLM's gauges, which its busy API server serves late and which fall
    to 0 once the engine has generated an answer the server is still streaming out, this
    moves while the node streams."""
    return _proxied_bytes(drill, node, "downstream")


def bytes_asked_of(drill: DrillRun, node: str) -> float:
    """Bytes the gateways have sent ``node`` through the fault proxy (its upstream count:
    requests, health checks); ProbeError when the proxy does not count ``node``."""
    return _proxied_bytes(drill, node, "upstream")


def _proxied_bytes(drill: DrillRun, node: str, direction: str) -> float:
    url = f"{drill.stack.fault_proxy_url}/metrics"
    page = scrape(drill.http, url, timeout=PROXY_SCRAPE_TIMEOUT_S)
    value = page.total(PROXY_SENT_BYTES, proxy=node, direction=direction)
    if value is None:
        raise ProbeError(url, PROXY_SENT_BYTES, f"no {direction} count for {node}")
    return value


#: Enough of a component's log for every request a CI session sends it (one line each).
LOG_LINES = 500_000


def requests_taken_by(drill: DrillRun, node: str, lines: int = LOG_LINES) -> RequestLog:
    """The request ids ``node``'s own log says its engine took (see
    :mod:`harness.observe.request_log`), over its last ``lines`` lines; empty when the
    runtime keeps no log of it."""
    return RequestLog.parse(node, drill.stack.log_tail(node, lines=lines))


HOLD_POLL_S = 0.5
PRECONDITION_POLL_S = 0.25
ON_CPU_POLL_S = 0.05
#: The share of one CPU a process must use between two polls to count as at work: an
#: idle vLLM engine waits on its input socket and uses none.
ON_CPU_SHARE = 0.4
#: Polls in a row at work before a process counts as working: the first is the step that
#: takes a new request in, whose report is not out yet (a CI run's engine, stopped at the
#: first poll at work, reported 0 running twice in three tries).
ON_CPU_POLLS = 3
#: How far the front door's log may lag the responses it sent: its lines reach the file
#: through the runtime's pipe (supervisord's, the container engine's), after the response.
LOG_CATCH_UP_S = 15.0


def answered_whole(results: Iterable[RequestResult]) -> list[str]:
    """The stack's ids of the responses the front door sent whole: an answer, or an error
    status (a shed among them). It logs each as it ends; a stream the client left, or one
    cut, it logs when it notices, which can be a timeout later."""
    return [r.stack_request_id for r in results
            if r.stack_request_id and (r.ok or _error_status(r.status))]


def _error_status(status: int | None) -> bool:
    return status is not None and status >= 400


def front_door_log(drill: DrillRun, lines: int = LOG_LINES, covering: Collection[str] = (),
                   catch_up_s: float = LOG_CATCH_UP_S) -> FrontDoorLog:
    """The gateway the front door's own log says it sent each request to (see
    :mod:`harness.observe.front_door_log`), over its last ``lines`` lines.

    ``covering``: the stack's ids of responses the front door sent whole
    (:func:`answered_whole`). Waits
    (``catch_up_s``) until the log holds every one, and raises :class:`ProbeError` naming those
    still missing: a line not yet written never reads as a request the front door did
    not handle (a fresh-clone CI run counted 4 of a wave's 81 sheds as unexplained)."""
    name = drill.stack.topology.front_door.name
    wanted = frozenset(covering)

    def read() -> Probe[FrontDoorLog]:
        log = FrontDoorLog.parse(drill.stack.log_tail(name, lines=lines))
        missing = sorted(wanted - log.requests.keys())
        return Probe(done=not missing, value=log,
                     seen=f"{len(missing)} of {len(wanted)} not logged, e.g. {missing[:3]}")

    try:
        log = Wait(within=catch_up_s, interval=PRECONDITION_POLL_S).until(
            f"{name}'s log to hold the {len(wanted)} requests it answered", read)
    except NotReady as exc:
        raise ProbeError(f"{name}'s log", "the requests it answered", exc.last_seen) from exc
    assert log is not None
    return log


def fault_proxy_closed(drill: DrillRun, proxy: str, since: float) -> float | None:
    """When the fault proxy closed ``proxy``'s listener at or after ``since``, by its own
    log (``Terminated proxy``); None when its log does not say (an attached stack whose
    logs llm-drill cannot read)."""
    log = drill.stack.log_tail(drill.stack.topology.fault_proxy.name, lines=LOG_LINES)
    return terminated_at(log, proxy, since)


_UNREADABLE = (httpx.HTTPError, OSError, Unreachable, ProbeError)  # retried until the deadline


class RestartFault(Protocol):
    """A process fault whose component the stack's supervisor must bring back."""

    @property
    def restart_property(self) -> str: ...

    @property
    def observed(self) -> Observed: ...


def restarted_by_the_stack(drill: DrillRun, fault: RestartFault, within_s: float) -> float:
    """Judge the stack's restart after a process fault: the supervisor brought the
    component back (a new incarnation that passes its readiness probe) within
    ``within_s``. Records restart-to-ready (death -> ready again, the stack's time: from
    the kill, or from the exit a SIGTERM's drain ends in) and returns it; a component
    that never came back fails the drill, never reads as 0 s."""
    observed = fault.observed
    ready = observed.ready_after_s
    back = observed.not_back is None and ready is not None
    drill.check(fault.restart_property, back,
                f"new main pid {observed.restarted_pid} (was {observed.killed_pid})" if back
                else observed.not_back or "no new incarnation was seen ready")
    assert ready is not None  # back, or check raised
    drill.measure("restart_to_ready_s", ready)
    drill.check("restart to ready within bound", ready <= within_s,
                f"{ready:.1f}s from its death (bound {within_s:g}s)")
    return ready


def await_property(drill: DrillRun, prop: str, within: float, check: Callable[[], bool],
                   seen: Callable[[], object] | None = None) -> float:
    """Wait until ``check()`` is true; record the verdict with the time it took."""
    began = time.monotonic()
    try:
        _await(prop, within, check, seen)
    except NotReady as exc:
        drill.check(prop, False, str(exc))
    took = time.monotonic() - began
    drill.check(prop, True, f"after {took:.1f}s")
    return took


def recovery_seconds(since: float, within: float, check: Callable[[], bool],
                     seen: Callable[[], object] | None = None,
                     awaited: str = "steady state after the fault") -> float:
    """Seconds from ``since`` (the fault's revert or end: a ``drill.phase`` mark) to the
    first poll on which ``check()`` held: the one recovery measurement
    (:func:`harness.observe.recovery.time_to_recover`). Raises NotReady past ``within``."""

    def probe() -> Probe[None]:
        return Probe(done=check(), seen=str(seen()) if seen else "")

    return time_to_recover(probe, since=since, within=within, awaited=awaited,
                           interval=0.25, transient=_UNREADABLE).seconds


def await_recovery(drill: DrillRun, prop: str, *, since: float, within: float,
                   check: Callable[[], bool],
                   seen: Callable[[], object] | None = None,
                   since_what: str = "the fault's revert") -> float:
    """:func:`await_property` for the property that says the stack is back (or has
    reacted): record the verdict, and return the time from ``since`` (see
    :func:`recovery_seconds`); ``since_what`` names that moment in the verdict."""
    try:
        took = recovery_seconds(since, within, check, seen, awaited=prop)
    except NotReady as exc:
        drill.check(prop, False, str(exc))
        raise  # unreachable: check raised
    drill.check(prop, True, f"{took:.1f}s after {since_what}")
    return took


def hold_fault(drill: DrillRun, prop: str, *, until: float, holds: Callable[[], bool],
               seen: Callable[[], object],
               settled: Callable[[], bool] | None = None) -> None:
    """Keep a fault in place until ``until`` (wall clock) while the stack must keep
    ``prop`` true: read every ``HOLD_POLL_S``; the first reading where it does not fails
    the drill on ``prop`` with what was seen. ``settled``, when given, ends the hold
    sooner: once it is true nothing left can break ``prop`` any more."""
    def probe() -> Probe[None]:
        if not holds():
            drill.check(prop, False, str(seen()))
        over = time.time() >= until or (settled is not None and settled())
        return Probe(done=over, seen=str(seen()))

    Wait(within=max(0.0, until - time.time()) + HOLD_POLL_S * 4, interval=HOLD_POLL_S,
         transient=_UNREADABLE).until(f"the fault held ({prop})", probe)
    drill.check(prop, True, str(seen()))


def await_precondition(drill: DrillRun, what: str, within: float, check: Callable[[], bool],
                       seen: Callable[[], object] | None = None, *,
                       every: float = PRECONDITION_POLL_S) -> float:
    """Wait until a precondition of the fault holds, checking it ``every`` seconds; the
    drill is INCONCLUSIVE (with what it last saw) if it never does. Returns the seconds
    it took."""
    began = time.monotonic()
    try:
        _await(what, within, check, seen, every)
    except NotReady as exc:
        raise drill.inconclusive(what, exc.last_seen) from exc
    took = time.monotonic() - began
    drill.check(what, True, f"after {took:.1f}s")
    return took


def await_on_cpu(drill: DrillRun, what: str, pids: Callable[[], Iterable[int]],
                 within: float) -> float:
    """Until one of ``pids`` (read again at each poll) is at work at ``ON_CPU_POLLS``
    polls in a row, ``ON_CPU_POLL_S`` apart: runnable at the poll (on a CPU or waiting
    for one: a CI host's busy worker got less than ``ON_CPU_SHARE`` of a CPU for 17 s),
    or having used ``ON_CPU_SHARE`` of a CPU since the last; by the kernel's own
    accounting. INCONCLUSIVE, like any precondition, if it never is."""
    use = CpuUse()
    return await_precondition(
        drill, what, within,
        lambda: use.readings_at_work(pids(), ON_CPU_SHARE) >= ON_CPU_POLLS,
        lambda: f"at most {use.highest:.0%} of a CPU between polls", every=ON_CPU_POLL_S)


def _await(awaited: str, within: float, check: Callable[[], bool],
           seen: Callable[[], object] | None, every: float = PRECONDITION_POLL_S) -> None:
    def probe() -> Probe[None]:
        return Probe(done=check(), seen=str(seen()) if seen else "")

    Wait(within=within, interval=every, transient=_UNREADABLE).until(awaited, probe)


def completion(drill: DrillRun, base_url: str, *, tokens: int = 16,
               prompt: str = "drill probe", timeout: float = 30.0) -> httpx.Response:
    """One non-streamed completion (privacy: callers keep status and timings, not text)."""
    body = {"model": drill.stack.model, "prompt": prompt, "max_tokens": tokens,
            "ignore_eos": True, "temperature": 0}
    return drill.http.post(f"{base_url}/v1/completions", json=body, timeout=timeout)


def streamed_ttft(drill: DrillRun, base_url: str, tokens: int = 16) -> float:
    """Seconds to the first streamed content chunk (one carrying ``choices``)."""
    body = {"model": drill.stack.model, "prompt": "warm-up probe", "max_tokens": tokens,
            "ignore_eos": True, "stream": True}
    began = time.monotonic()
    with drill.http.stream("POST", f"{base_url}/v1/completions", json=body,
                           timeout=30.0) as response:
        response.raise_for_status()
        for timed in stream_chunks(response.iter_bytes(), time.monotonic):
            if timed.chunk.has_choices:
                return timed.at - began
    raise httpx.RemoteProtocolError("stream ended before any chunk")


ROUTER_LIVE_METRIC = "vllm_router_requests_total"


def gateway_counter(drill: DrillRun, gateway: str, metric: str) -> float:
    """A vllm-router counter of ``gateway``, summed over its labels.

    vllm-router registers a counter at its first increment, so a counter it has never
    moved is absent from a page that is otherwise its own: that reads as 0 only when the
    page shows the router counting requests (``vllm_router_requests_total``); any other
    page, or none, raises :class:`ProbeError`."""
    url = drill.stack.gateway_metrics_url(gateway)
    snap = scrape(drill.http, url)
    value = snap.total(metric)
    if value is not None:
        return value
    if snap.total(ROUTER_LIVE_METRIC) is None:
        raise ProbeError(url, metric, f"absent, and {ROUTER_LIVE_METRIC} too: not a live "
                                      "vllm-router page")
    return 0.0


def gateway_retries(drill: DrillRun) -> dict[str, float]:
    """Each gateway's own retry count (``vllm_router_retries_total``: one per retry the
    router made after a retryable failure of a worker)."""
    return {gw: gateway_counter(drill, gw, "vllm_router_retries_total")
            for gw in drill.stack.gateway_names}


def front_door_counter(drill: DrillRun, metric: str, **labels: str) -> float:
    """A counter of the front door's own exporter (HAProxy); ProbeError when absent."""
    t = drill.stack.topology
    url = t.url(t.front_door.stats_port, "/metrics")
    value = scrape(drill.http, url).total(metric, **labels)
    if value is None:
        raise ProbeError(url, metric, f"absent for {labels}")
    return value
