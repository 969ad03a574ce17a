"""A hung component under load, three ways: node1's engine (``VLLM::EngineCore``)
SIGSTOPped while its API server keeps running; the whole of node1 (every process of it);
or one gateway (``gateway-a``, every process of it). Held past the drill's bound on a
user's wait, then SIGCONTed.

A hang is not a crash: nothing is refused, nothing exits, and vLLM 0.32's ``/health``
answers 200 while its engine hangs (its API server only asks whether the engine has
errored). The fault is proven first, else INCONCLUSIVE: the engine is stopped while its
API server runs (the fault verifies it) and the engine's last report holds running requests
(what NodeStalled reads): users' requests the hang caught. A whole component hung answers
nothing at all: its health checks and Prometheus' scrapes time out rather than fail, and
the hang is proven by the fault proxy's counts (the stack keeps sending it bytes, it sends
none back). A node is stopped, engine alone or whole, the moment the kernel shows its
engine at work (runnable, or using CPU): its ``/metrics`` answer mostly while it is idle,
so its gauges cannot time the stop.

From the stack's own evidence, then: whoever routes to the hung component takes it out
of rotation (node1: every gateway's ``vllm_router_worker_health``, the shipped gateways
check the nodes' engine ping, which asks the engine itself; gateway-a: the front door's
server state) and says so (GatewayBackendDown, FrontDoorBackendDown, delivered); the
component's own alert fires and is delivered (NodeStalled: running requests, no token;
NodeDown: no scrape answered); no user's request waits on the hung component past
``stuck_within_s`` (the hang is held past it, so the stack must end those waits itself,
not the component coming back nor the user's patience); the requests lost are bounded,
and every one was the hung component's (node1's own log; the front door's log). Once
resumed, it is taken back, it serves users again, and the alerts resolve.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import pytest

from drills.catalogue import Drill, HungComponentConfig, StartDrill
from harness.drill import (
    ClientPolicy,
    PauseProcess,
    Probe,
    RequestResult,
    Timeouts,
    Wait,
    answered_since,
    answered_whole,
    await_on_cpu,
    await_precondition,
    await_property,
    await_recovery,
    bytes_answered_by,
    bytes_asked_of,
    ensure_steady,
    every_gateway_sees,
    front_door_counter,
    front_door_log,
    front_door_state,
    gateways_see,
    hold_fault,
    node_counter,
    open_loop_traffic,
    percentile,
    requests_taken_by,
    shed_problem,
    stack_error_problem,
    titled,
    worker_url,
)
from harness.load import BackgroundLoad
from harness.load.stats import Window

VICTIM, HUNG_GATEWAY = "node1", "gateway-a"
#: vLLM's engine core (it schedules each step and reports after it): the process whose
#: CPU time is watched. Idle, it blocks on its input queue (state S); with requests it
#: steps without pause, runnable while it waits on its worker's answer. The worker
#: (VLLM::Worker) is no sign of work: it keeps polling for the next step for a second
#: after its last one (vLLM's shared-memory queue, ``busy_loop_s``); stops timed on either
#: found the last report at 0 running in 8 of 11 tries of a CI run. Timed on the engine
#: core alone, 3 of 5 locally: the step a stop lands in may not be reported yet.
ENGINE = "VLLM::EngineCore"
RUNNING = "vllm:num_requests_running"
SUCCESSES = "vllm:request_success_total"
FRONT_DOOR_BACKEND = "gateways"
SETTLE_S = 0.3
#: Two readings may each take up to the drill client's 10 s timeout: under a load's
#: requests a node's API server took over 3 s to answer one /metrics in a landing CI.
SETTLE_WITHIN_S = 25.0
#: The hang outlasts the bound on the last request the hung component took by this.
HOLD_SLACK_S = 2.0
#: Users wait on a hung node until the gateways give up (client TTFT and tokens/s), the
#: gateways' breakers open on those timeouts, and node2 alone carries the users: its
#: queue and KV cache fill (two 900-token answers fill a node's 64 blocks; a CI run saw
#: KVCacheSaturated on node2 for a second of the whole node's hang). A hung engine's last
#: report, which its live API server keeps serving, also keeps the KV cache its running
#: requests held (a local run saw KVCacheSaturated on node1 for the whole hang).
#: The requests a hung component took hold their front-door slots until a timeout ends
#: them, so the front door sheds part of the rest (judged: clean and bounded): users see
#: errors (429, 503) and the front door counts its denials.
SHEDDING_ALERTS = {"FrontDoorShedding", "ErrorRateHigh"}
NODE_HANG_ALERTS = {"TTFTHigh", "TPSDrop", "CircuitOpen", "QueueBacklog", "KVCacheSaturated",
                    *SHEDDING_ALERTS}
#: Users wait on a hung gateway until the front door gives up on it.
GATEWAY_HANG_ALERTS = {"TTFTHigh", "TPSDrop", *SHEDDING_ALERTS}


class Rotation(Protocol):
    """Whoever routes users' requests to the hung component, and what it says of it."""

    @property
    def who(self) -> str: ...            # who takes it out of rotation

    @property
    def busy_what(self) -> str: ...      # what shows it holds users' requests

    @property
    def served_what(self) -> str: ...    # what shows it serves users again

    @property
    def evidence(self) -> str: ...       # whose log names the requests sent to it

    def out(self, drill: Drill) -> bool: ...

    def back(self, drill: Drill) -> bool: ...

    def seen(self, drill: Drill) -> str: ...

    def down_alert(self, drill: Drill) -> tuple[str, dict[str, str]]: ...

    def busy(self, drill: Drill) -> float: ...

    def served(self, drill: Drill) -> float: ...

    def not_its_own(self, drill: Drill, request_ids: Iterable[str | None]) -> list[str | None]: ...

    def given_up_unanswered(self, drill: Drill,
                            request_ids: Iterable[str | None]) -> list[str] | None:
        """The requests it gave up on while the hung component had not answered them at
        all: those it could have retried elsewhere. None: its evidence does not say."""


@dataclass(frozen=True)
class BehindTheGateways:
    """A node: the gateways check it and route to it."""

    node: str
    who: str = "every gateway"
    busy_what: str = f"its engine's {RUNNING}"
    served_what: str = f"its own {SUCCESSES}"
    evidence: str = "its own log"

    def out(self, drill: Drill) -> bool:
        return every_gateway_sees(drill, self.node, healthy=False)

    def back(self, drill: Drill) -> bool:
        return every_gateway_sees(drill, self.node, healthy=True)

    def seen(self, drill: Drill) -> str:
        return str(gateways_see(drill, self.node))

    def down_alert(self, drill: Drill) -> tuple[str, dict[str, str]]:
        return "GatewayBackendDown", {"worker": worker_url(drill, self.node)}

    def busy(self, drill: Drill) -> float:
        return node_counter(drill, self.node, RUNNING)

    def served(self, drill: Drill) -> float:
        return node_counter(drill, self.node, SUCCESSES)

    def not_its_own(self, drill: Drill, request_ids: Iterable[str | None]) -> list[str | None]:
        return requests_taken_by(drill, self.node).not_taken(request_ids)

    def given_up_unanswered(self, drill: Drill,
                            request_ids: Iterable[str | None]) -> list[str] | None:
        """vllm-router logs no outcome per request: the users' failures are judged as lost
        (bounded, and node1's own) instead."""
        return None


@dataclass(frozen=True)
class BehindTheFrontDoor:
    """A gateway: the front door (HAProxy) checks it and routes to it."""

    gateway: str
    who: str = "the front door"
    busy_what: str = "the front door's sessions on it"
    served_what: str = "the front door's 2xx answers from it"
    evidence: str = "the front door's log"

    def out(self, drill: Drill) -> bool:
        return front_door_state(drill, self.gateway) == "DOWN"

    def back(self, drill: Drill) -> bool:
        return front_door_state(drill, self.gateway) == "UP"

    def seen(self, drill: Drill) -> str:
        return f"{self.gateway} {front_door_state(drill, self.gateway)}"

    def down_alert(self, drill: Drill) -> tuple[str, dict[str, str]]:
        return "FrontDoorBackendDown", {"server": self.gateway}

    def busy(self, drill: Drill) -> float:
        return front_door_counter(drill, "haproxy_server_current_sessions",
                                  proxy=FRONT_DOOR_BACKEND, server=self.gateway)

    def served(self, drill: Drill) -> float:
        return front_door_counter(drill, "haproxy_server_http_responses_total",
                                  proxy=FRONT_DOOR_BACKEND, server=self.gateway, code="2xx")

    def not_its_own(self, drill: Drill, request_ids: Iterable[str | None]) -> list[str | None]:
        return front_door_log(drill).not_sent_to(self.gateway, request_ids)

    def given_up_unanswered(self, drill: Drill,
                            request_ids: Iterable[str | None]) -> list[str] | None:
        return front_door_log(drill).gave_up_unanswered(self.gateway, request_ids)


@dataclass(frozen=True)
class Hang:
    """What hangs, who must take it out of rotation, and the alerts that must say so."""

    drill: str                  # the journal's name
    component: str
    only: str | None            # the processes stopped by title; None: every one of them
    alert: str                  # the component's own alert
    section: str                # its thresholds in drills.yaml
    rotation: Rotation
    allowed: frozenset[str]     # alerts it may also raise
    #: the process (by title) whose CPU time shows the component at work on users'
    #: requests (a node's engine core: its /metrics, served on its serving loop, answer
    #: mostly while it is idle); None: the stack's own gauges (``rotation.busy``)
    works_in: str | None = None

    def config(self, drill: Drill) -> HungComponentConfig:
        config: HungComponentConfig = getattr(drill.config, self.section)
        return config


ENGINE_HANG = Hang("hung_engine", VICTIM, ENGINE, "NodeStalled", "hung_component",
                   BehindTheGateways(VICTIM), frozenset(NODE_HANG_ALERTS),
                   works_in=ENGINE)
NODE_HANG = Hang("hung_node", VICTIM, None, "NodeDown", "hung_component",
                 BehindTheGateways(VICTIM), frozenset(NODE_HANG_ALERTS),
                 works_in=ENGINE)
GATEWAY_HANG = Hang("hung_gateway", HUNG_GATEWAY, None, "FrontDoorBackendDown", "hung_gateway",
                    BehindTheFrontDoor(HUNG_GATEWAY), frozenset(GATEWAY_HANG_ALERTS))


def client_policy(cfg: HungComponentConfig) -> ClientPolicy:
    """One attempt (the stack retries, not the user), and a read timeout past the bound:
    the stack must end a stuck request first."""
    return ClientPolicy(timeouts=Timeouts(connect=2.0, read=cfg.stuck_within_s * 2))


def run_hung_engine(drill: Drill) -> None:
    run_hung(drill, ENGINE_HANG)


def run_hung_node(drill: Drill) -> None:
    run_hung(drill, NODE_HANG)


def run_hung_gateway(drill: Drill) -> None:
    run_hung(drill, GATEWAY_HANG)


def run_hung(drill: Drill, hang: Hang) -> None:
    ensure_steady(drill)
    cfg = hang.config(drill)
    rotation = hang.rotation
    load = drill.load(open_loop_traffic(drill, cfg.rate_per_s, client_policy(cfg),
                                        output_tokens=cfg.output_tokens)).start()
    started = drill.phase("load started")
    await_property(drill, "users are answered before the fault", cfg.traffic_within_s,
                   lambda: answered_since(load, started) >= cfg.answered)
    with hung_mid_work(drill, hang) as fault:
        marked = drill.phase("fault applied")
        hung = fault.observed.applied_at or marked  # the stop itself, before the settling
        prove_the_hang(drill, hang, hung)
        out_s = await_recovery(
            drill, f"{rotation.who} takes {hang.component} out of rotation", since=hung,
            within=cfg.out_within_s, check=lambda: rotation.out(drill),
            seen=lambda: rotation.seen(drill), since_what="the hang")
        drill.measure("out_of_rotation_s", out_s)
        for alert, labels in alerts_of(drill, hang):
            drill.expect_alert(alert, within=cfg.alert_within_s, labels=labels)
        bound = cfg.stuck_within_s
        # held until the last request it could take (right before it left rotation) has
        # ended or waited past the bound: only the stack can end those waits
        left_rotation = hung + out_s
        hold_fault(drill, f"no request waits on the hung {hang.component} past the bound",
                   until=left_rotation + bound + HOLD_SLACK_S,
                   holds=lambda: stuck(load, bound) == 0,
                   seen=lambda: f"{stuck(load, bound)} requests in flight longer than "
                                f"{bound:g}s",
                   settled=lambda: load.in_flight_sent_before(left_rotation) == 0)
        drill.measure("held_s", time.time() - hung)
    resumed = drill.phase("fault reverted")
    drill.measure("back_in_rotation_s", await_recovery(
        drill, f"{rotation.who} takes {hang.component} back", since=resumed,
        within=cfg.back_within_s, check=lambda: rotation.back(drill),
        seen=lambda: rotation.seen(drill)))
    served_before = rotation.served(drill)
    await_property(drill, f"{hang.component} serves users again ({rotation.served_what})",
                   cfg.back_within_s, lambda: rotation.served(drill) > served_before)
    load.stop()
    results = load.wait(within=cfg.stuck_within_s * 2 + 30)
    judge_users(drill, hang, results, Window(hung, resumed))
    for alert, labels in alerts_of(drill, hang):
        drill.expect_alert(alert, "resolved", within=cfg.alert_within_s, labels=labels)
    drill.expect_no_unexpected_alerts(set(hang.allowed) | {a for a, _ in alerts_of(drill, hang)})


def alerts_of(drill: Drill, hang: Hang) -> list[tuple[str, dict[str, str]]]:
    """The alerts the hang must raise: whoever routes to it says it is down; the
    component's own alert, when that is another one."""
    down = hang.rotation.down_alert(drill)
    if hang.alert == down[0]:
        return [down]
    own = {"node": hang.component}
    return [down, (hang.alert, own)]


@contextmanager
def hung_mid_work(drill: Drill, hang: Hang) -> Iterator[PauseProcess]:
    """The component stopped while users' requests run on it: the engine alone (its last
    report must hold running requests, see :func:`engine_stopped_mid_work`), or the whole
    component once it holds users' requests (nothing of it reports after the stop)."""
    if hang.only is not None:
        with engine_stopped_mid_work(drill, hang) as fault:
            yield fault
        return
    cfg = hang.config(drill)
    rotation = hang.rotation
    if hang.works_in is not None:
        await_at_work(drill, hang, cfg.precondition_within_s)
    else:
        await_precondition(
            drill, f"{hang.component} holds users' requests ({rotation.busy_what})",
            cfg.precondition_within_s, lambda: rotation.busy(drill) > 0,
            lambda: f"{rotation.busy_what}: {rotation.busy(drill):g}")
    with PauseProcess(drill.stack, hang.component) as fault:
        drill.check(f"every process of {hang.component} is stopped (the hang held)", True,
                    f"stopped {list(fault.targets())}")
        yield fault


@contextmanager
def engine_stopped_mid_work(drill: Drill, hang: Hang) -> Iterator[PauseProcess]:
    """node1's engine stopped while its last report holds running requests (what
    NodeStalled reads). Each try stops it the moment the kernel shows it at work (runnable,
    or using CPU; see ``ENGINE``): it reports after every step. Its ``/metrics``,
    served on its serving loop, answer mostly while it is idle (waiting for those to show
    running requests took up to 20 s a try), and its own log's ``Added request`` can come
    before the engine steps (a CI run needed 4 stops, 12 s each). A stop that still finds
    its last report at 0 running is resumed at once and tried again, within
    ``precondition_within_s``."""
    cfg = hang.config(drill)
    deadline = time.monotonic() + cfg.precondition_within_s
    for attempt in itertools.count(1):
        remaining = max(1.0, deadline - time.monotonic())
        await_at_work(drill, hang, remaining)
        with PauseProcess(drill.stack, hang.component, only=hang.only) as fault:
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


def await_at_work(drill: Drill, hang: Hang, within: float) -> None:
    """Until the kernel shows the component's ``works_in`` process at work
    (``await_on_cpu``): an idle vLLM engine core blocks on its input queue; while users'
    requests run, it steps without pause."""
    title = hang.works_in
    assert title is not None, f"{hang.drill} names no process that shows its work"
    # found once: finding a component's processes asks supervisord (twice), which on a
    # busy host stretched each 50 ms poll to about a quarter second when done every poll
    engine = titled(drill.stack.pids(hang.component), title)
    await_on_cpu(drill, f"{hang.component}'s engine is at work on users' requests (its CPU "
                        "time)", lambda: engine, within)


def settled(read: Callable[[], float]) -> float:
    """A gauge once two readings ``SETTLE_S`` apart agree (outputs the engine sent before
    its stop may still be on their way to the API server)."""
    readings: list[float] = []

    def probe() -> Probe[float]:
        readings.append(read())
        return Probe(done=len(readings) > 1 and readings[-1] == readings[-2],
                     value=readings[-1], seen=f"readings {readings[-3:]}")
    Wait(within=SETTLE_WITHIN_S, interval=SETTLE_S).until(
        "the stopped engine's last report to settle", probe)
    return readings[-1]


def prove_the_hang(drill: Drill, hang: Hang, hung: float) -> None:
    """The stack still asks the hung component and gets nothing back (the fault proxy's
    counts). node1's engine alone stopped needs no more proof than its stop: its last
    report held running requests (:func:`engine_stopped_mid_work`), users' requests the
    hang caught. Whether the gateways send it more before their checks take it out is
    theirs to choose (a run whose gateways sent none in 150 s was INCONCLUSIVE when that
    was asked too)."""
    if hang.only is not None:
        return
    cfg = hang.config(drill)
    name = hang.component
    # what it wrote before its stop may still leave its socket: wait for that to end
    answered = settled(lambda: bytes_answered_by(drill, name))
    asked = bytes_asked_of(drill, name)
    await_precondition(drill, f"{name} is asked and answers nothing while hung "
                              "(the fault proxy's counts)", cfg.precondition_within_s,
                       lambda: (bytes_asked_of(drill, name) > asked
                                and bytes_answered_by(drill, name) == answered),
                       lambda: f"{bytes_asked_of(drill, name) - asked:.0f} bytes asked, "
                               f"{bytes_answered_by(drill, name) - answered:.0f} answered "
                               f"since the hang {time.time() - hung:.0f}s ago")


def stuck(load: BackgroundLoad, bound: float) -> int:
    """The users' requests in flight for longer than the bound."""
    return load.in_flight_sent_before(time.time() - bound)


def judge_users(drill: Drill, hang: Hang, results: tuple[RequestResult, ...],
                window: Window) -> None:
    """Every request the hang could touch: in flight when it began or sent while it held.
    How long the longest waited is the stack's bound on a hung component; that each failed
    one was the hung component's, its own log (a node) or the front door's (a gateway)
    says."""
    cfg = hang.config(drill)
    bound = cfg.stuck_within_s
    touched = [r for r in results
               if r.sent_at < window.end and r.sent_at + r.elapsed_s > window.start]
    shed_ids = front_door_log(drill, covering=answered_whole(touched)).shed_ids()
    shed = [r for r in touched if r.stack_request_id in shed_ids]
    failed = [r for r in touched if not r.ok and r.cancelled is None
              and r.stack_request_id not in shed_ids]
    answered = [r.ttft_s for r in touched if r.ok and r.ttft_s is not None]
    longest = max((r.sent_at + r.elapsed_s - max(r.sent_at, window.start) for r in touched),
                  default=0.0)
    rotation = hang.rotation
    elsewhere = rotation.not_its_own(drill, (r.stack_request_id for r in failed))
    drill.measure("requests_touched", len(touched))
    drill.measure("failed_requests", len(failed))
    drill.measure("shed_requests", len(shed))
    drill.measure("longest_wait_after_hang_s", longest)
    drill.measure("left_by_the_client", sum(1 for r in touched if r.cancelled is not None))
    if answered:
        drill.measure("answered_ttft_p95_s", percentile(answered, 95))
    drill.check("requests lost to the hang are bounded",
                len(failed) <= cfg.max_failed_requests,
                f"{len(failed)} failed of {len(touched)} touched (budget "
                f"{cfg.max_failed_requests}); first: "
                f"{[stack_error_problem(r) or r.error for r in failed[:3]]}")
    judge_shed(drill, hang, shed, touched)
    given_up = rotation.given_up_unanswered(drill, (r.stack_request_id for r in failed))
    if given_up is not None:
        drill.check(f"{rotation.who} retries elsewhere what the hung {hang.component} never "
                    "answered", not given_up,
                    f"{len(given_up)} of {len(failed)} failed requests ended unanswered by "
                    f"{hang.component} ({rotation.evidence}): {given_up[:3]}")
    drill.check(f"only requests {hang.component} took are lost ({rotation.evidence})",
                not elsewhere,
                f"{len(elsewhere)} of {len(failed)} failed requests were not "
                f"{hang.component}'s: {elsewhere[:3]}")
    drill.check(f"no request waits on the hung {hang.component} past the bound",
                longest <= bound,
                f"the longest ended {longest:.1f}s after the hang began (bound {bound:g}s)")


def judge_shed(drill: Drill, hang: Hang, shed: list[RequestResult],
               touched: list[RequestResult]) -> None:
    """What the front door's admission control turned away while the component hung:
    the hung component's requests hold their slots until a timeout ends them, so the
    rest of the stack has fewer. Not lost on the hung component, and not silent: each a
    clean refusal (the error schema, the stack's request id, Retry-After), and at most
    ``max_shed_ratio`` of the requests the hang touched."""
    cfg = hang.config(drill)
    unclean = [f"{r.stack_request_id}: {problem}" for r in shed
               for problem in [shed_problem(r)] if problem]
    drill.check_together(
        ("requests shed while the component hung are turned away cleanly", not unclean,
         f"{len(unclean)} of {len(shed)}: {unclean[:3]}"),
        ("requests shed while the component hung are bounded",
         len(shed) <= cfg.max_shed_ratio * len(touched),
         f"{len(shed)} of {len(touched)} touched shed by the front door (at most "
         f"{cfg.max_shed_ratio:.0%})"))


@pytest.mark.parametrize("hang", [ENGINE_HANG, NODE_HANG, GATEWAY_HANG], ids=lambda h: h.drill)
def test_hung_component(start_drill: StartDrill, hang: Hang) -> None:
    with start_drill(hang.drill) as drill:
        run_hung(drill, hang)
