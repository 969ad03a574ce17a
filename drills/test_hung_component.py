"""Hung node1, two ways, under load: its engine (``VLLM::EngineCore``) SIGSTOPped while its
API server keeps running, or the whole node (every process of it) SIGSTOPped; held past
the drill's bound on a user's wait, then SIGCONTed.

A hang is not a crash: nothing is refused, nothing exits, and vLLM 0.32's ``/health``
answers 200 throughout (its API server only asks whether the engine has errored). The
fault is proven first: the engine is stopped while its API server runs (the fault
verifies it), the engine's last report holds running requests (what NodeStalled reads)
and node1's own log shows it taking users' requests during the hang; else INCONCLUSIVE.

From the stack's own evidence, then: every gateway takes node1 out of rotation (its
``vllm_router_worker_health``: the shipped gateways check the nodes' engine ping, which
asks the engine itself) and GatewayBackendDown is delivered; NodeStalled fires for node1
and is delivered; no user's request waits on the hung engine past ``stuck_within_s``
(the hang is held past it, so the stack must end those waits itself, the gateways'
request timeout, not the engine coming back nor the user's patience); the requests lost
are bounded, and every one of them is a request node1's own log says it took. Once
resumed, every gateway takes node1 back, it serves users again (its own counter grows),
and both alerts resolve.

The whole node hung answers nothing at all: its health checks and Prometheus' scrapes
time out rather than fail. The fault is proven by the fault proxy's counts (the gateways
keep sending node1 bytes, node1 sends none back) and its alert is NodeDown (no scrape
answered for ``node_hung_s``) instead of NodeStalled (which reads the engine's report, and
a stopped API server reports nothing); everything else is judged as for the engine.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from drills.catalogue import Drill, HungComponentConfig, StartDrill
from harness.drill import (
    ClientPolicy,
    PauseProcess,
    Probe,
    RequestResult,
    Timeouts,
    Wait,
    await_precondition,
    await_property,
    await_recovery,
    bytes_answered_by,
    bytes_asked_of,
    ensure_steady,
    every_gateway_sees,
    gateways_see,
    hold_fault,
    node_counter,
    open_loop_traffic,
    percentile,
    requests_taken_by,
    stack_error_problem,
    worker_url,
)
from harness.load import BackgroundLoad
from harness.load.stats import Window

VICTIM, SURVIVOR = "node1", "node2"
ENGINE = "VLLM::EngineCore"
RUNNING = "vllm:num_requests_running"
SUCCESSES = "vllm:request_success_total"
SETTLE_S = 0.3
#: Users wait on the hung node until the gateways give up (client TTFT and tokens/s),
#: the gateways' breakers open on those timeouts, and the hung engine's last report
#: still counts its queue; besides the node's own alert, which the drill requires.
ALLOWED_ALERTS = {"GatewayBackendDown", "TTFTHigh", "TPSDrop", "CircuitOpen", "QueueBacklog"}


@dataclass(frozen=True)
class Hang:
    """What of node1 hangs, and the alert that must say so."""

    drill: str          # the journal's name
    only: str | None    # the processes stopped by title; None: every process of node1
    alert: str          # the node's alert: the engine's report stalls, or no scrape answers

    @property
    def what(self) -> str:
        return f"{VICTIM}'s engine" if self.only else VICTIM


ENGINE_HANG = Hang("hung_engine", ENGINE, "NodeStalled")
NODE_HANG = Hang("hung_node", None, "NodeDown")


def client_policy(drill: Drill) -> ClientPolicy:
    """One attempt (the gateways retry, not the user), and a read timeout past the bound:
    the stack must end a stuck request first."""
    bound = drill.config.hung_component.stuck_within_s
    return ClientPolicy(timeouts=Timeouts(connect=2.0, read=bound * 2))


def answered_since(load: BackgroundLoad, since: float) -> int:
    return sum(1 for r in load.results() if r.ok and r.sent_at > since)


def run_hung_engine(drill: Drill) -> None:
    run_hung(drill, ENGINE_HANG)


def run_hung_node(drill: Drill) -> None:
    run_hung(drill, NODE_HANG)


def run_hung(drill: Drill, hang: Hang) -> None:
    ensure_steady(drill)
    cfg = drill.config.hung_component
    bound = cfg.stuck_within_s
    load = drill.load(open_loop_traffic(drill, cfg.rate_per_s, client_policy(drill),
                                        output_tokens=cfg.output_tokens)).start()
    started = drill.phase("load started")
    await_property(drill, "users are answered before the fault", cfg.traffic_within_s,
                   lambda: answered_since(load, started) >= cfg.answered)
    with hung_mid_work(drill, hang) as fault:
        marked = drill.phase("fault applied")
        hung = fault.observed.applied_at or marked  # the stop itself, before the settling
        prove_the_hang(drill, hang, hung)
        drill.measure("out_of_rotation_s", await_recovery(
            drill, f"every gateway takes {VICTIM} out of rotation", since=hung,
            within=cfg.out_within_s, check=lambda: every_gateway_sees(drill, VICTIM, healthy=False),
            seen=lambda: gateways_see(drill, VICTIM), since_what="the hang"))
        drill.expect_alert("GatewayBackendDown", within=cfg.alert_within_s,
                           labels={"worker": worker_url(drill, VICTIM)})
        drill.expect_alert(hang.alert, within=cfg.alert_within_s, labels={"node": VICTIM})
        hold_fault(drill, "no request waits on the hung node past the bound",
                   until=hung + cfg.hold_s, holds=lambda: stuck(load, bound) == 0,
                   seen=lambda: f"{stuck(load, bound)} requests in flight longer than "
                                f"{bound:g}s")
    resumed = drill.phase("fault reverted")
    drill.measure("back_in_rotation_s", await_recovery(
        drill, f"every gateway takes {VICTIM} back", since=resumed, within=cfg.back_within_s,
        check=lambda: every_gateway_sees(drill, VICTIM, healthy=True),
        seen=lambda: gateways_see(drill, VICTIM)))
    victim_before = node_counter(drill, VICTIM, SUCCESSES)
    await_property(drill, f"{VICTIM} serves users again (its own {SUCCESSES})",
                   cfg.back_within_s,
                   lambda: node_counter(drill, VICTIM, SUCCESSES) > victim_before)
    load.stop()
    results = load.wait(within=bound * 2 + 30)
    judge_users(drill, results, Window(hung, resumed), bound)
    for alert, labels in (("GatewayBackendDown", {"worker": worker_url(drill, VICTIM)}),
                          (hang.alert, {"node": VICTIM})):
        drill.expect_alert(alert, "resolved", within=cfg.alert_within_s, labels=labels)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS | {hang.alert})


@contextmanager
def hung_mid_work(drill: Drill, hang: Hang) -> Iterator[PauseProcess]:
    """node1 stopped while users' requests run on it: the engine alone (its last report
    must hold running requests, see :func:`engine_stopped_mid_work`), or the whole node
    once its engine reports running requests (nothing reports after the stop)."""
    if hang.only is not None:
        with engine_stopped_mid_work(drill) as fault:
            yield fault
        return
    cfg = drill.config.hung_component
    await_precondition(drill, f"{VICTIM}'s engine runs users' requests",
                       cfg.precondition_within_s,
                       lambda: node_counter(drill, VICTIM, RUNNING) > 0,
                       lambda: f"{RUNNING} {node_counter(drill, VICTIM, RUNNING):g}")
    with PauseProcess(drill.stack, VICTIM) as fault:
        drill.check(f"every process of {VICTIM} is stopped (the hang held)", True,
                    f"stopped {list(fault.targets())}")
        yield fault


@contextmanager
def engine_stopped_mid_work(drill: Drill) -> Iterator[PauseProcess]:
    """node1's engine stopped while its last report holds running requests (what
    NodeStalled reads): the tiny model generates an answer in about a second and streams
    it out for several more, so an engine that runs requests a moment before the stop may
    have reported 0 by the stop (a local run: INCONCLUSIVE). A stop that finds it idle is
    resumed at once and tried again, within ``precondition_within_s``."""
    cfg = drill.config.hung_component
    deadline = time.monotonic() + cfg.precondition_within_s
    for attempt in itertools.count(1):
        remaining = max(1.0, deadline - time.monotonic())
        await_precondition(drill, f"{VICTIM}'s engine runs users' requests", remaining,
                           lambda: node_counter(drill, VICTIM, RUNNING) > 0,
                           lambda: f"{RUNNING} {node_counter(drill, VICTIM, RUNNING):g}")
        with PauseProcess(drill.stack, VICTIM, only=ENGINE) as fault:
            last = settled(lambda: node_counter(drill, VICTIM, RUNNING))
            if last > 0:
                drill.measure("stops_until_mid_work", attempt)
                drill.check(f"{VICTIM}'s engine is stopped mid-work and its API server still "
                            "runs (the hang held)", True,
                            f"stopped {list(fault.targets())}, running "
                            f"{list(fault.running_besides())}; its last report: {last:g} "
                            f"running (stop {attempt})")
                yield fault
                return
        if time.monotonic() >= deadline:
            raise drill.inconclusive(f"{VICTIM}'s engine is stopped mid-work",
                                     f"{attempt} stops each found its last report at 0 running")


def settled(read: Callable[[], float]) -> float:
    """A gauge once two readings ``SETTLE_S`` apart agree (outputs the engine sent before
    its stop may still be on their way to the API server)."""
    readings: list[float] = []

    def probe() -> Probe[float]:
        readings.append(read())
        return Probe(done=len(readings) > 1 and readings[-1] == readings[-2],
                     value=readings[-1], seen=f"readings {readings[-3:]}")
    Wait(within=SETTLE_S * 10, interval=SETTLE_S).until(
        "the stopped engine's last report to settle", probe)
    return readings[-1]


def prove_the_hang(drill: Drill, hang: Hang, hung: float) -> None:
    """The stack still asks node1 while it hangs: with the engine alone stopped, its API
    server takes users' requests (its own log); with the whole node stopped, the gateways
    keep sending it bytes and it sends none back (the fault proxy's counts)."""
    cfg = drill.config.hung_component
    if hang.only is not None:
        taken_before = requests_taken_by(drill, VICTIM).taken
        await_precondition(drill, f"{VICTIM} takes users' requests while its engine is hung "
                                  f"(its own log)", cfg.precondition_within_s,
                           lambda: bool(requests_taken_by(drill, VICTIM).taken - taken_before),
                           lambda: f"no request added to {VICTIM}'s log since the hang "
                                   f"{time.time() - hung:.0f}s ago")
        return
    # what node1 wrote before its stop may still leave its socket: wait for that to end
    answered = settled(lambda: bytes_answered_by(drill, VICTIM))
    asked = bytes_asked_of(drill, VICTIM)
    await_precondition(drill, f"{VICTIM} is asked and answers nothing while hung "
                              "(the fault proxy's counts)", cfg.precondition_within_s,
                       lambda: (bytes_asked_of(drill, VICTIM) > asked
                                and bytes_answered_by(drill, VICTIM) == answered),
                       lambda: f"{bytes_asked_of(drill, VICTIM) - asked:.0f} bytes asked, "
                               f"{bytes_answered_by(drill, VICTIM) - answered:.0f} answered "
                               f"since the hang {time.time() - hung:.0f}s ago")


def stuck(load: BackgroundLoad, bound: float) -> int:
    """The users' requests in flight for longer than the bound."""
    return load.in_flight_sent_before(time.time() - bound)


def judge_users(drill: Drill, results: tuple[RequestResult, ...], hang: Window,
                bound: float) -> None:
    """Every request the hang could touch: in flight when it began or sent while it held.
    How long the longest waited is the stack's bound on a hung engine; which node took
    each failed one, node1's own log says."""
    cfg: HungComponentConfig = drill.config.hung_component
    touched = [r for r in results if r.sent_at < hang.end and r.sent_at + r.elapsed_s > hang.start]
    failed = [r for r in touched if not r.ok and r.cancelled is None]
    answered = [r.ttft_s for r in touched if r.ok and r.ttft_s is not None]
    longest = max((r.sent_at + r.elapsed_s - max(r.sent_at, hang.start) for r in touched),
                  default=0.0)
    elsewhere = requests_taken_by(drill, VICTIM).not_taken(r.stack_request_id for r in failed)
    drill.measure("requests_touched", len(touched))
    drill.measure("failed_requests", len(failed))
    drill.measure("longest_wait_after_hang_s", longest)
    drill.measure("left_by_the_client", sum(1 for r in touched if r.cancelled is not None))
    if answered:
        drill.measure("answered_ttft_p95_s", percentile(answered, 95))
    drill.check("requests lost to the hang are bounded",
                len(failed) <= cfg.max_failed_requests,
                f"{len(failed)} failed of {len(touched)} touched (budget "
                f"{cfg.max_failed_requests}); first: "
                f"{[stack_error_problem(r) or r.error for r in failed[:3]]}")
    drill.check(f"only requests {VICTIM} took are lost (its own log)", not elsewhere,
                f"{len(elsewhere)} of {len(failed)} failed requests were not {VICTIM}'s: "
                f"{elsewhere[:3]}")
    drill.check("no request waits on the hung node past the bound", longest <= bound,
                f"the longest ended {longest:.1f}s after the hang began (bound {bound:g}s)")


@pytest.mark.parametrize("hang", [ENGINE_HANG, NODE_HANG], ids=lambda h: h.drill)
def test_hung_component(start_drill: StartDrill, hang: Hang) -> None:
    with start_drill(hang.drill) as drill:
        run_hung(drill, hang)
