"""Node restart: SIGKILL, then SIGTERM, of a node with streams in flight.

SIGTERM is a graceful shutdown (vLLM's ``--shutdown-timeout``, the stack file's
``model.shutdown_timeout_s``): the requests in flight complete, no user sees an error,
and the node exits by itself before the SIGKILL that follows its grace.

SIGKILL must hold: streams on the dead node end within a bound of the kill (fail fast, never at a
client timeout); only the dead node's streams fail: every request a surviving node's
engine started in the fault window ran to its end (vLLM's own request accounting on the
survivors; only streams the client itself left may be missing) and not every stream in
flight failed; a retry of each failed
request through the front door succeeds while the node is down; every gateway marks the
node down, then up again; no engine process
outlives the node; the stack's supervisor (never the drill) restarts it, and
restart-to-ready (the kill, or the exit a SIGTERM's drain ends in, to the new
incarnation's first real completion) and the
TTFT p95 of the first requests through the front door after the restart (warm-up) is
measured and held to the checklist's target;
NodeDown fires while the node is down, is delivered to its receiver through
Alertmanager, and resolves; GatewayBackendDown (the gateways took it out) fires and is
delivered too.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx
import pytest

from drills.catalogue import Drill, NodeRestartConfig, StartDrill
from harness.drill import (
    ClientPolicy,
    EngineAborts,
    EngineRequests,
    KillProcess,
    LoadSpec,
    MetricsSource,
    NotReady,
    Probe,
    RequestResult,
    TerminateProcess,
    Timeouts,
    Unreachable,
    Wait,
    await_precondition,
    await_property,
    await_recovery,
    bytes_answered_by,
    engine_aborts,
    engine_ttft_buckets,
    ensure_steady,
    gateway_retries,
    gateways_see,
    group_members,
    node_counter,
    node_sources,
    parse_lengths,
    percentile,
    quantile_bound,
    read_engine_requests,
    requests_taken_by,
    restarted_by_the_stack,
    streamed_ttft,
    worker_url,
)
from harness.observe.request_log import RequestLog

VICTIM = "node1"
#: The SIGTERM found node1 generating an answer when its log shows a request taken at
#: most this long before: a 724-token answer (900 asked, cut at max_model_len) took
#: 1.0-1.3 s to generate alone on an idle node here, longer under the drill's load.
FRESH_WITHIN_S = 0.5
GATE_POLL_S = 0.05  # the last gate reads the tail of node1's log this often
GATE_LOG_LINES = 50  # enough of it for the latest burst of requests
ABORTS_NOTHING_HELD = f"{VICTIM} aborts nothing it held at the SIGTERM (its own log)"
DRAIN_MARGIN_S = 15.0  # beyond the node's shutdown timeout: the process exits, ports close
ALLOWED_ALERTS = {"NodeDown", "GatewayBackendDown", "CircuitOpen", "EngineUnhealthy",
                  "ErrorRateHigh", "TTFTHigh", "TPSDrop", "QueueBacklog", "KVCacheSaturated"}


def streams_in_flight(drill: Drill) -> LoadSpec:
    cfg = drill.config.node_restart
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=10 * cfg.streams * int(cfg.stream_timeout_s),
                    concurrency=cfg.streams,
                    duration_s=(cfg.precondition_within_s + cfg.stream_timeout_s) * 2,  # two gates
                    drain_s=cfg.stream_timeout_s,
                    output_len=parse_lengths(str(cfg.output_tokens), field_name="output_len"),
                    policy=ClientPolicy(timeouts=Timeouts(connect=2.0,
                                                          stream_idle=cfg.stream_timeout_s)))


def run_node_restart(drill: Drill, graceful: bool) -> None:
    ensure_steady(drill)
    cfg = drill.config.node_restart
    load = drill.load(streams_in_flight(drill)).start()
    serving = VictimServing(drill)
    await_precondition(drill, f"{VICTIM} serves requests before the fault",
                       cfg.precondition_within_s, serving.now, serving.describe)
    pid = drill.stack.pid(VICTIM)
    if pid is None:
        raise drill.inconclusive(f"{VICTIM} runs before the fault", "no process group recorded")
    old_group = os.getpgid(pid)  # the supervised program's group (its wrapper leads it)
    survivors = surviving_nodes(drill)
    survivors_before = read_when_answering(drill, survivors)
    retries_before = gateway_retries(drill)
    fault = (TerminateProcess(drill.stack, VICTIM, restart_within_s=cfg.restart_within_s,
                              grace_s=drain_grace_s(drill), main_pid=pid)
             if graceful else
             KillProcess(drill.stack, VICTIM, restart_within_s=cfg.restart_within_s))
    with ExitStack() as faulted:
        with collector_paused():  # nothing of the harness's between the gate and the signal
            last_gate(drill, serving, graceful)
            faulted.enter_context(fault)
        held_at_fault = serving.held  # as last read before the fault
        if held_at_fault is not None:
            drill.measure("requests_held_by_victim_at_fault", held_at_fault)
        bytes_before = serving.bytes_read
        applied = drill.phase("fault applied")  # once the death was seen (SIGTERM: exited)
        # the signal itself: the streams a SIGKILL cuts end before the mark above (a CI
        # run counted 6 streams in flight at the mark, none of them node1's: INCONCLUSIVE)
        killed_at = fault.observed.applied_at or applied
        if serving.log_read_at is not None:
            drill.measure("signal_after_gate_s", killed_at - serving.log_read_at)
        answered_through = bytes_answered_by(drill, VICTIM) - bytes_before
        drill.measure("victim_bytes_answered_through_fault", answered_through)
        await_property(drill, "no engine process outlives the node", cfg.mark_down_within_s,
                       lambda: not group_members(old_group),
                       lambda: f"alive in the old group: {group_members(old_group)}")
        await_property(drill, "every gateway marks the node down", cfg.mark_down_within_s,
                       lambda: all(v == 0 for v in gateways_see(drill, VICTIM).values()),
                       lambda: gateways_see(drill, VICTIM))
        # The node is down until the supervisor's restart is ready (tens of seconds):
        # NodeDown must fire and reach its receiver meanwhile (expect_alert proves both).
        drill.expect_alert("NodeDown", within=node_down_within(drill, cfg),
                           labels={"node": VICTIM})
        drill.expect_alert("GatewayBackendDown", within=cfg.mark_down_within_s * 2,
                           labels={"worker": worker_url(drill, VICTIM)})
        load.stop()
        results = load.wait(within=cfg.stream_timeout_s * 2)
        # before the retries below, whose probes leave after their first token
        survivors_after = read_when_answering(drill, survivors)
        retried_by_gateways = sum(gateway_retries(drill).values()) - sum(retries_before.values())
        failed = [r for r in results if not r.ok and r.cancelled is None]
        retried = retry_each_through_the_front_door(drill, len(failed))
        drill.check("a retry of each failed request succeeds while the node is down",
                    retried == len(failed), f"{retried} of {len(failed)} retries answered")
        reverting = drill.phase("fault reverted")
    restarted_by_the_stack(drill, fault, cfg.restart_within_s)
    through = ThroughTheKill(killed_at=killed_at, held=held_at_fault,
                             streamed=serving.streamed, through=answered_through,
                             retried=retried_by_gateways,
                             dropped=engine_aborts(survivors_before, survivors_after))
    if isinstance(fault, TerminateProcess):
        judge_drain(drill, results, fault, through)
    else:
        judge_streams(drill, results, through)
    drill.measure("recovery_s", await_recovery(
        drill, "every gateway marks the node up again",
        since=fault.observed.reverted_at or reverting, within=cfg.mark_down_within_s,
        check=lambda: all(v == 1 for v in gateways_see(drill, VICTIM).values()),
        seen=lambda: gateways_see(drill, VICTIM)))
    judge_warmup(drill)
    drill.expect_alert("NodeDown", "resolved", within=cfg.mark_down_within_s * 2)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's garbage collector paused inside, after a full collection: the moment the
    last gate picks must not pass while the harness collects (a local run's SIGTERM left
    0.52 s after its gate, the request it was meant to catch no longer fresh)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def node_down_within(drill: Drill, cfg: NodeRestartConfig) -> float:
    """NodeDown's bound: twice the gateways' own; and past the rule's wait for scrapes
    that time out when the node's address is gone with it (a container on the node
    network that nothing restarts: a CI run's broken stack fired after 35 s)."""
    topology = drill.stack.topology
    hung_s = topology.thresholds.node_hung_s if topology.node_address_vanishes(VICTIM) else 0
    return cfg.mark_down_within_s * 2 + hung_s


def last_gate(drill: Drill, serving: VictimServing, graceful: bool) -> None:
    """The last gate, nothing slow after it. SIGKILL: node1's answer bytes grew over the
    last short window, so the kill lands mid-stream. SIGTERM: node1's own log shows a
    request taken within the last quarter second, so its answer is still being generated
    (draining and aborting differ only then: the tiny model generates an answer in about
    a second and streams it out for several more). The bytes the gateways sent node1
    through the fault proxy were no gate for that: a local run's gate fired on 536 bytes
    of health checks and scrapes, 4 s after node1 had taken its last request."""
    cfg = drill.config.node_restart
    serving.rebase()
    if graceful:
        await_precondition(drill, f"{VICTIM} took a request right before the fault "
                                  "(its own log)",
                           cfg.precondition_within_s, serving.took_afresh,
                           serving.describe_taken, every=GATE_POLL_S)
    else:
        await_precondition(drill, f"{VICTIM} streams answers right before the fault",
                           cfg.precondition_within_s, serving.streaming, serving.describe)
    drill.measure("victim_bytes_streamed_before_fault", serving.streamed)
    drill.measure("victim_streaming_window_s", serving.window_s)


def judge_warmup(drill: Drill) -> None:
    """The first requests through the front door once the node is back: their TTFT p95,
    as the engines measured it (vLLM's histogram, read before and after the probes), is
    held to the checklist's target. The client's own reading is kept beside it; it is not
    the judge, because the harness's process stalls on a loaded host (a local run read
    1.05 s where the front door had answered every probe within 0.24 s)."""
    cfg = drill.config.node_restart
    before = engine_ttft_buckets(drill)
    client = percentile([streamed_ttft(drill, drill.stack.front_door_url)
                         for _ in range(cfg.warmup_requests)], 95)
    bound, counted = quantile_bound(before, engine_ttft_buckets(drill), 0.95)
    drill.measure("warmup_ttft_p95_client_s", client)
    if counted < cfg.warmup_requests:
        raise drill.inconclusive("the engines counted the warm-up probes",
                                 f"{counted:.0f} of {cfg.warmup_requests} in their histogram")
    drill.measure("warmup_ttft_p95_s", bound)
    drill.check("warm-up TTFT p95 within target (the engines, probed through the front door)",
                bound <= cfg.warmup_ttft_p95_s,
                f"at most {bound:g}s by the engines' buckets over {counted:.0f} requests "
                f"(target {cfg.warmup_ttft_p95_s}s; the client read {client:.3f}s)")


@dataclass(frozen=True)
class ThroughTheKill:
    """What the stack showed of the kill, besides the streams."""

    killed_at: float
    held: float | None     # node1's running + waiting, last read right before the fault
    streamed: float        # bytes node1 sent back over the last reading before the fault
    through: float         # bytes node1 sent back from right before the fault to its exit
    retried: float         # the gateways' retries, from before the fault to the load's end
    dropped: EngineAborts  # the surviving engines' accounting over the same window

    def serving(self) -> str:
        return serving_detail(self.held, self.streamed)


def judge_streams(drill: Drill, results: tuple[RequestResult, ...],
                  kill: ThroughTheKill) -> None:
    """The streams through the kill: the dead node's end fast, the survivors' complete.

    The kill took effect when it cut something: a stream in flight failed, or the
    gateways retried requests node1 held before it sent them a byte
    (``vllm_router_retries_total``); neither and the drill is INCONCLUSIVE."""
    cfg = drill.config.node_restart
    summary = drill.summarize("streams through the fault", results)
    in_flight = [r for r in results if r.sent_at < kill.killed_at < r.finished_at]
    drill.measure("streams_in_flight_at_fault", len(in_flight))
    drill.check("streams were in flight when the node died", bool(in_flight),
                f"{len(in_flight)} of {len(results)}")
    hung = [r.request_id for r in results if r.elapsed_s > cfg.stream_timeout_s * 1.5]
    drill.check("no stream hangs past the client timeout", not hung, f"hung: {hung}")
    failed_in_flight = [r for r in in_flight if not r.ok and r.cancelled is None]
    drill.measure("streams_failed_at_fault", len(failed_in_flight))
    drill.measure("gateway_retries_through_fault", kill.retried)
    if not failed_in_flight and kill.retried <= 0:
        raise drill.inconclusive("the kill cut requests in flight on the node",
                                 f"none of {len(in_flight)} streams in flight failed and the "
                                 f"gateways retried none; {kill.serving()} "
                                 "when last read before the fault")
    slow = [f"{r.request_id}: {r.finished_at - kill.killed_at:.1f}s"
            for r in failed_in_flight if r.finished_at - kill.killed_at > cfg.fail_fast_s]
    drill.check("streams on the dead node end fast", not slow,
                f"over {cfg.fail_fast_s}s after the kill: {slow[:5]}; errors {summary.errors}")
    left = sum(1 for r in results if r.cancelled is not None)
    drill.measure("survivor_requests_dropped", kill.dropped.total)
    victim_log = requests_taken_by(drill, VICTIM)
    if not victim_log.taken:
        raise drill.inconclusive(
            "which node served each failed stream",
            f"{VICTIM}'s log names no request it took ({victim_log.how_to_log})")
    elsewhere = victim_log.not_taken(r.stack_request_id for r in failed_in_flight)
    drill.check("only the dead node's streams fail",
                kill.dropped.total <= left and not elsewhere,
                f"{len(failed_in_flight)} of {len(in_flight)} in flight failed, "
                f"{len(elsewhere)} of them never taken by {VICTIM} (its own log): "
                f"{elsewhere[:5]} ({kill.serving()} right before the fault); surviving "
                f"engines {kill.dropped.describe()}; the client left {left}")


def drain_grace_s(drill: Drill) -> float:
    """How long the SIGTERM fault waits for the node to exit before it SIGKILLs: the
    node's own shutdown timeout (vLLM's ``--shutdown-timeout``, the stack file's
    ``model.shutdown_timeout_s``) and a margin for the process to go."""
    return drill.stack.topology.model.shutdown_timeout_s + DRAIN_MARGIN_S


def judge_drain(drill: Drill, results: tuple[RequestResult, ...], fault: TerminateProcess,
                term: ThroughTheKill) -> None:
    """SIGTERM is a graceful shutdown: the node finishes what it holds (vLLM drains within
    its shutdown timeout), takes nothing new, and exits by itself; no user notices.

    The streams in flight at the SIGTERM must end as complete answers (vLLM's
    ``finish_reason`` never ``abort``), every other stream too (the gateways retry what
    the draining node refuses), and the node must exit without the SIGKILL that follows
    its grace. The SIGTERM hit work only if node1's own log shows a request it took
    within ``FRESH_WITHIN_S`` before it, its answer still to be generated (an idle node
    drains and aborts alike: runs with ``--shutdown-timeout 0`` passed when node1's last
    answer was already generated), and streams were in flight; else INCONCLUSIVE. The
    bytes it sent after the SIGTERM
    are measured, not required: an aborting node sends none, and that is the failure.
    Nor may node1 abort a request it took before the SIGTERM (its own log: vLLM's
    ``Aborted request(s)`` between the SIGTERM and its exit): the gateways retry one that
    had sent nothing yet, so the users would not see it (a CI run's aborting node passed
    that way), but the node dropped work a drain keeps."""
    sigterm_at = fault.observed.applied_at
    if sigterm_at is None:
        raise drill.inconclusive("the SIGTERM was sent", "the fault recorded no signal")
    summary = drill.summarize("streams through the SIGTERM", results)
    in_flight = [r for r in results if r.sent_at < sigterm_at < r.finished_at]
    drill.measure("streams_in_flight_at_fault", len(in_flight))
    victim_log = requests_taken_by(drill, VICTIM)
    generating = victim_log.taken_between(sigterm_at - FRESH_WITHIN_S, sigterm_at)
    last_taken = victim_log.last_taken_at(before=sigterm_at)
    if last_taken is not None:
        drill.measure("victim_last_request_taken_before_sigterm_s", sigterm_at - last_taken)
    if not in_flight or not generating:
        raise drill.inconclusive(
            f"the SIGTERM found {VICTIM} generating an answer",
            f"{len(in_flight)} streams in flight; {VICTIM}'s log: "
            + ("no request taken" if last_taken is None else
               f"last request taken {sigterm_at - last_taken:.2f}s")
            + f" before the SIGTERM (within {FRESH_WITHIN_S}s needed); {term.serving()}")
    exited = fault.observed.exited_at
    if exited is not None:
        drill.measure("drain_s", exited - sigterm_at)
    cut = [r for r in in_flight if not r.ok and r.cancelled is None]
    drill.measure("streams_failed_at_fault", len(cut))
    others = [r for r in results if r not in in_flight and not r.ok and r.cancelled is None]
    left = sum(1 for r in results if r.cancelled is not None)
    drill.measure("survivor_requests_dropped", term.dropped.total)
    dropped = victim_log.aborted_of_those_taken_before(
        sigterm_at, until=exited if exited is not None else time.time())
    drill.measure("held_requests_aborted_at_sigterm", len(dropped))
    shutdown = victim_log.shutdown_after(sigterm_at)
    drill.check_together(
        (ABORTS_NOTHING_HELD, not dropped,
         f"{len(dropped)} of the requests it took before the SIGTERM aborted before its "
         f"exit: {when_dropped(victim_log, dropped[:3], sigterm_at)} (the gateways may "
         f"have retried them elsewhere); its shutdown: {shutdown}"),
        ("requests in flight at SIGTERM complete", not cut,
         f"{len(cut)} of {len(in_flight)} in flight failed: {failures(cut, sigterm_at)}; "
         f"{term.serving()} right before the SIGTERM; {VICTIM}'s shutdown: {shutdown}"),
        ("the node exits by itself after draining (no SIGKILL)",
         exited is not None and not fault.observed.escalated,
         f"still running {drain_grace_s(drill):g}s after SIGTERM: SIGKILLed"
         if exited is None else f"exited {exited - sigterm_at:.1f}s after SIGTERM"),
        ("no other request fails while the node drains and restarts", not others,
         f"{len(others)} failed: {failures(others, sigterm_at)}; errors {summary.errors}"),
        ("the surviving engines drop nothing", term.dropped.total <= left,
         f"surviving engines {term.dropped.describe()}; the client left {left}"))


def when_dropped(log: RequestLog, engine_ids: list[str], sigterm_at: float) -> list[str]:
    """Each dropped request with when its node took it and aborted it, from the SIGTERM
    (its log's clock): an abort at the signal is the drain refusing held work, one at the
    exit the server going before it had sent everything."""
    return [f"{i} taken {log.added_at.get(i, math.nan) - sigterm_at:+.2f}s, aborted "
            f"{log.aborted_at[i] - sigterm_at:+.2f}s" for i in engine_ids]


def failures(results: list[RequestResult], fault_at: float, shown: int = 5) -> list[str]:
    """The first failed requests: the stack's request id where it set one (else the
    client's), when each was sent relative to the fault, and its error."""
    return [f"{r.stack_request_id or r.request_id} sent {r.sent_at - fault_at:+.1f}s: "
            f"{r.error.kind.value + ' ' + r.error.message if r.error else '?'}"
            for r in results[:shown]]


class VictimServing:
    """Whether the victim serves requests now, on the stack's evidence: its engine holds
    some (vLLM's running + waiting), or it is streaming answers back (its bytes through
    the fault proxy grew since the last reading). The tiny model generates a long answer
    in about a second and the API server streams it out for several more, while serving
    ``/metrics`` late: the engine's gauges alone missed a minute of streams in a local
    run (INCONCLUSIVE), the proxy's counter does not."""

    def __init__(self, drill: Drill) -> None:
        self.drill = drill
        self.held: float | None = None
        self.streamed = 0.0
        self.window_s = 0.0
        self.bytes_read = 0.0
        self.last_taken_at: float | None = None
        self.log_read_at: float | None = None  # when the last gate last read node1's log
        self._read_at: float | None = None

    def now(self) -> bool:
        """Serving: the engine holds requests or the node streamed since the last reading."""
        self.streaming()
        self.held = self._engine_holds()
        return (self.held is not None and self.held > 0) or self.streamed > 0

    def streaming(self) -> bool:
        """The node's answer bytes grew since the last reading (the proxy's counter only:
        one fast read, so the window stays short)."""
        sent = bytes_answered_by(self.drill, VICTIM)
        read_at = time.monotonic()
        first = self._read_at is None
        self.streamed = 0.0 if first else sent - self.bytes_read
        self.window_s = 0.0 if self._read_at is None else read_at - self._read_at
        self.bytes_read, self._read_at = sent, read_at
        return not first and self.streamed > 0

    def took_afresh(self) -> bool:
        """Node1's own log shows a request taken within the last ``FRESH_WITHIN_S / 2``
        (vLLM's ``Added request`` line, stamped to the millisecond): its whole answer is
        still to be generated, so a SIGTERM now lands while the engine works on it. Read
        from the log's tail, in about a millisecond."""
        log = requests_taken_by(self.drill, VICTIM, lines=GATE_LOG_LINES)
        self.last_taken_at = log.last_taken_at()
        self.log_read_at = time.time()
        return (self.last_taken_at is not None
                and self.log_read_at - self.last_taken_at <= FRESH_WITHIN_S / 2)

    def describe_taken(self) -> str:
        if self.last_taken_at is None:
            return f"no request in the tail of {VICTIM}'s log"
        return f"{VICTIM} took its last request {time.time() - self.last_taken_at:.2f}s ago"

    def rebase(self) -> None:
        """Forget the last reading: the next growth is measured from a fresh one."""
        self._read_at = None

    def _engine_holds(self) -> float | None:
        try:
            return requests_held_by(self.drill, VICTIM)
        except (Unreachable, httpx.HTTPError):
            return None  # vLLM's API server busy streaming: the bytes decide this reading

    def describe(self) -> str:
        return f"{serving_detail(self.held, self.streamed)} over {self.window_s:.1f}s"


def serving_detail(held: float | None, streamed: float) -> str:
    engine = "unread" if held is None else f"{held:.0f}"
    return f"{VICTIM} held {engine}, streamed {streamed:.0f} bytes"


def requests_held_by(drill: Drill, node: str) -> float:
    """Requests ``node``'s engine holds, running or queued (vLLM's own gauges)."""
    return sum(node_counter(drill, node, f"vllm:num_requests_{state}")
               for state in ("running", "waiting"))


def surviving_nodes(drill: Drill) -> dict[str, MetricsSource]:
    """Every stable node but the victim, by its own ``/metrics``."""
    return {n: s for n, s in node_sources(drill.stack.topology, drill.http).items()
            if n in drill.stack.node_names and n != VICTIM}


def read_when_answering(drill: Drill,
                        nodes: dict[str, MetricsSource]) -> dict[str, EngineRequests]:
    """Each node's request accounting; a busy vLLM serves /metrics in gaps, so wait
    (bounded) for an answer; past the bound the evidence is missing: INCONCLUSIVE."""
    read: list[dict[str, EngineRequests]] = []

    def attempt() -> Probe[None]:
        read.append(read_engine_requests(nodes))
        return Probe(done=True, seen="read")

    try:
        Wait(within=drill.config.node_restart.precondition_within_s, interval=0.5,
             transient=(httpx.HTTPError, OSError, Unreachable)).until(
            "the surviving nodes' request accounting", attempt)
    except NotReady as exc:
        raise drill.inconclusive("the surviving nodes' request accounting is readable",
                                 exc.last_seen) from exc
    return read[-1]


def retry_each_through_the_front_door(drill: Drill, failed: int) -> int:
    """One retry per failed request, sent now (the node still down): how many the stack
    answered with a streamed completion."""
    answered = 0
    for _ in range(failed):
        try:
            streamed_ttft(drill, drill.stack.front_door_url)
        except httpx.HTTPError:
            continue
        answered += 1
    return answered


@pytest.mark.parametrize("graceful", [False, True], ids=["sigkill", "sigterm"])
def test_node_restart(start_drill: StartDrill, graceful: bool) -> None:
    name = "node_restart_sigterm" if graceful else "node_restart_sigkill"
    with start_drill(name) as drill:
        run_node_restart(drill, graceful)
