"""Overload and load shedding: an open-loop surge at several times what the stack serves.

First the stack's capacity is measured on the stack's own count: the answers the front
door logged as served per second while closed-loop users kept it busy. Then users arrive
open-loop at ``surge_factor`` times that for ``surge_s``. The surge took effect when the
front door logged ``min_overload_factor`` times capacity arriving over half the surge (a
starved client that cannot send that fast leaves the drill INCONCLUSIVE, never passed).

Then the stack must shed what it cannot serve instead of letting every user wait:

- the front door turned requests away (its own log and ``requests_denied`` counter);
- each turned away cleanly: a 429 or 503 in the error schema, with the stack's request
  id and a ``Retry-After`` header, and at once (within ``shed_within_s`` of the whole
  request received, by the front door's log: the users' own client, starved on the same
  cores, may take seconds to send its headers), never a timeout or a dropped connection;
- every admitted request was answered, and its time to first token (the front door's
  wait for a gateway slot, p95 from its log, plus the engines' own TTFT p95 from their
  histogram) stayed within the SLO;
- the queue stayed bounded: no admitted request waited longer than
  ``max_queue_wait_s`` for a slot, no node's engine held more than ``max_engine_waiting``
  waiting requests (Prometheus' record of their gauges);
- nothing crashed or restarted (the same processes before and after);
- FrontDoorShedding fired, was delivered and resolved;
- after the surge the stack serves as at steady state again, without a restart.

A second drill checks the client side of the contract: a share of requests is answered
with ``429`` and ``Retry-After`` by the fault proxy in front of the gateways, and the
load generator (the well-behaved client the project models) must come back no sooner
than told, spread out (jitter, no synchronized herd), within its attempt budget, and
never give up early. It is judged on the front door's log of each attempt's arrival
(grouped by the id the client sent), not on the client's own record.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from itertools import pairwise

from drills.catalogue import Drill, StartDrill
from harness.drill import (
    ClientPolicy,
    HttpError,
    LoadSpec,
    RequestResult,
    RetryPolicy,
    Timeouts,
    answered_whole,
    await_recovery,
    engine_ttft_buckets,
    ensure_steady,
    front_door_counter,
    front_door_log,
    parse_lengths,
    percentile,
    quantile_bound,
    serving_problems,
    shed_problem,
    stack_error_problem,
    streamed_ttft,
)
from harness.load.spec import Arrival, Lengths
from harness.observe.front_door_log import FrontDoorRequest

ALLOWED_ALERTS = {"FrontDoorShedding", "TTFTHigh", "QueueBacklog", "TPSDrop",
                  "ErrorRateHigh", "KVCacheSaturated"}
SHED_STATUSES = (429, 503)
DENIED = "haproxy_frontend_requests_denied_total"
LOG_RESOLUTION_S = 0.005  # the front door logs to the millisecond; its clock, not the client's
CAPACITY_REQUESTS = 10_000  # closed-loop users stop at the window's end; this only bounds them


def served_per_s(log: Sequence[FrontDoorRequest], since: float, until: float) -> float:
    """Answers the front door logged as served (200) and ended between two moments, per s."""
    return sum(1 for r in log if r.status == 200 and since <= r.ended_at <= until) / (
        until - since)


def measure_capacity(drill: Drill) -> float:
    """Closed-loop users keep the stack busy; capacity is what the front door served per
    second after a warm-up, by its own log."""
    cfg = drill.config.overload
    window = cfg.warmup_s + cfg.capacity_s
    spec = LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    concurrency=cfg.capacity_users, max_requests=CAPACITY_REQUESTS,
                    duration_s=window, drain_s=30, output_len=output_len(drill), stream=False,
                    policy=ClientPolicy(timeouts=Timeouts(connect=2.0, read=30.0)))
    started = drill.phase("capacity measurement")
    drill.load(spec).start().wait(within=window + 60)
    since = started + cfg.warmup_s
    logged = list(front_door_log(drill).requests.values())
    capacity = drill.measure("capacity_per_s", served_per_s(logged, since, since + cfg.capacity_s))
    if capacity <= 0:
        raise drill.inconclusive("the stack's capacity was measured",
                                 "the front door served nothing to the closed-loop users")
    return capacity


def output_len(drill: Drill) -> Lengths:
    return parse_lengths(str(drill.config.overload.output_tokens), field_name="output_len")


def surge(drill: Drill, capacity: float) -> LoadSpec:
    """Open-loop users at ``surge_factor`` x capacity; one attempt each, so that what the
    stack sheds is seen once. Answers come whole, not streamed: reading hundreds of
    token streams at once starves the users' client on the stack's 2 cores (at 4x, half
    of them saw their own client stall), and the engines' TTFT histogram, not the
    client, is the evidence of how fast admitted requests were served."""
    cfg = drill.config.overload
    rate = cfg.surge_factor * capacity
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model, rate=rate,
                    max_requests=int(rate * cfg.surge_s), duration_s=cfg.surge_s, drain_s=60,
                    output_len=output_len(drill), stream=False,
                    policy=ClientPolicy(timeouts=Timeouts(connect=30.0, read=60.0)))


def stack_processes(drill: Drill) -> dict[str, int | None]:
    stack = drill.stack
    names = [*stack.node_names, *stack.gateway_names, stack.topology.front_door.name]
    return {name: stack.pid(name) for name in names}


def run_overload(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.overload
    processes = stack_processes(drill)
    capacity = measure_capacity(drill)
    ttft_before = engine_ttft_buckets(drill)
    denied_before = front_door_counter(drill, DENIED, proxy=drill.stack.topology.front_door.name)
    began = drill.phase("surge")
    load = drill.load(surge(drill, capacity)).start()
    results = load.wait(within=cfg.surge_s + 120)
    ended = drill.phase("surge over")
    ttft_after = engine_ttft_buckets(drill)
    denied = front_door_counter(drill, DENIED, proxy=drill.stack.topology.front_door.name)
    logged = surge_as_logged(drill, results)
    prove_the_overload(drill, logged, capacity)
    judge_shedding(drill, logged, results, denied - denied_before)
    judge_admitted(drill, logged, results, ttft_before, ttft_after)
    judge_queue(drill, logged, ended - began)
    drill.check("nothing crashed or restarted (the same processes before and after)",
                stack_processes(drill) == processes,
                f"before {processes}, after {stack_processes(drill)}")
    drill.expect_alert("FrontDoorShedding", within=cfg.alert_within_s)
    judge_recovery(drill, ended)
    drill.expect_alert("FrontDoorShedding", "resolved", within=cfg.alert_within_s)
    drill.expect_no_unexpected_alerts(ALLOWED_ALERTS)


def surge_as_logged(drill: Drill, results: Sequence[RequestResult]) -> list[FrontDoorRequest]:
    """The surge's requests as the front door logged them (by the id each user sent),
    oldest first."""
    sent = {r.request_id for r in results}
    logged = front_door_log(drill, covering=answered_whole(results)).requests.values()
    return sorted((r for r in logged if r.client_id in sent),
                  key=lambda r: r.arrived_at)


def peak_arrivals_per_s(arrivals: Sequence[float], window_s: float) -> float:
    """The most arrivals any ``window_s`` of time saw, per second (``arrivals`` sorted)."""
    most, first = 0, 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] > window_s:
            first += 1
        most = max(most, last - first + 1)
    return most / window_s


def prove_the_overload(drill: Drill, logged: Sequence[FrontDoorRequest],
                       capacity: float) -> None:
    """The front door saw the surge arrive: ``min_overload_factor`` x capacity over half the
    surge (``surge_s / 2``), its busiest stretch by its own log. Over that long, what
    arrives beyond capacity outgrows the front door's queue many times, so a front door
    with admission control must shed. The busiest stretch, not the whole span: a stack that
    does not shed slows until it takes in the rest late (a fresh-clone CI run without
    admission control took a 38 s surge in over 85 s), and that is its failure to judge,
    not a surge that never came."""
    cfg = drill.config.overload
    span = logged[-1].arrived_at - logged[0].arrived_at if len(logged) > 1 else 0.0
    drill.measure("surge_span_s", span)
    window = cfg.surge_s / 2
    arrived = drill.measure("surge_arrived_per_s", peak_arrivals_per_s(
        [r.arrived_at for r in logged], window))
    factor = drill.measure("surge_factor_seen", arrived / capacity)
    prop = f"the front door saw {cfg.min_overload_factor:g}x capacity arrive over {window:g}s"
    seen = (f"{arrived:.2f}/s at most over {window:g}s, {factor:.2f}x the {capacity:.2f}/s "
            f"served; {len(logged)} arrived over {span:.1f}s")
    if factor < cfg.min_overload_factor:
        raise drill.inconclusive(prop, seen)
    drill.check(prop, True, seen)


def judge_shedding(drill: Drill, logged: Sequence[FrontDoorRequest],
                   results: Sequence[RequestResult], denied: float) -> None:
    cfg = drill.config.overload
    shed = [r for r in logged if r.shed]
    drill.measure("shed_requests", len(shed))
    drill.measure("shed_ratio", len(shed) / max(1, len(logged)))
    drill.check("the front door turns away what it cannot serve",
                bool(shed) and denied > 0,
                f"{len(shed)} of {len(logged)} turned away by its log, {denied:.0f} denied "
                "by its counter")
    slowest = max(shed, key=lambda r: r.handled_s)
    drill.measure("shed_slowest_s", slowest.handled_s)
    drill.measure("shed_slowest_client_sending_s", slowest.client_sending_s)
    refused = [r for r in results if r.status in SHED_STATUSES]
    unclean = [f"{r.stack_request_id or r.request_id}: {problem}" for r in refused
               for problem in [shed_problem(r)] if problem]
    unanswered = [f"{r.request_id}: {stack_error_problem(r)}" for r in results
                  if r.status is None and r.cancelled is None]
    drill.check_together(
        ("shed requests are turned away at once", slowest.handled_s <= cfg.shed_within_s,
         f"slowest {slowest.handled_s:.3f}s from the whole request received (bound "
         f"{cfg.shed_within_s:g}s; its client took {slowest.client_sending_s:.3f}s to send "
         "it)"),
        ("shed requests carry the error schema, the stack's request id and Retry-After",
         bool(refused) and not unclean,
         f"{len(unclean)} of {len(refused)}: {unclean[:5]}"),
        ("every user gets an answer (served or shed), never a timeout or a dropped "
         "connection", not unanswered, f"{len(unanswered)} of {len(results)}: {unanswered[:5]}"))


def judge_admitted(drill: Drill, logged: Sequence[FrontDoorRequest],
                   results: Sequence[RequestResult], ttft_before: dict[float, float],
                   ttft_after: dict[float, float]) -> None:
    """Admitted requests (their answer began: 200) are answered, and fast: the wait for a
    gateway slot (the front door's log) plus the engines' own TTFT stays within the SLO."""
    slo = drill.config.slo.ttft_s
    admitted = [r for r in results if r.status == 200]
    failed = [f"{r.stack_request_id}: {r.error.kind.value if r.error else '?'}"
              for r in admitted if not r.ok and r.cancelled is None]
    served = [r for r in logged if r.status == 200]
    waits = [r.queued_s for r in served if r.queued_s is not None]
    slot_wait = drill.measure("slot_wait_p95_s", percentile(waits, 95) if waits else 0.0)
    engine_ttft, counted = quantile_bound(ttft_before, ttft_after, 0.95)
    drill.measure("engine_ttft_p95_bound_s", engine_ttft)
    drill.measure("admitted_requests", len(admitted))
    drill.check_together(
        ("every admitted request is answered", bool(admitted) and not failed,
         f"{len(failed)} of {len(admitted)} failed: {failed[:5]}"),
        ("admitted requests' TTFT stays within the SLO (slot wait p95 + engines' TTFT p95)",
         counted > 0 and slot_wait + engine_ttft <= slo,
         f"{slot_wait:.2f}s + <= {engine_ttft:g}s over {counted:.0f} requests (SLO {slo:g}s)"))


def judge_queue(drill: Drill, logged: Sequence[FrontDoorRequest], surge_s: float) -> None:
    cfg = drill.config.overload
    waits = [r.queued_s for r in logged if r.status == 200 and r.queued_s is not None]
    longest = drill.measure("slot_wait_longest_s", max(waits, default=0.0))
    query = f"max(max_over_time(vllm:num_requests_waiting[{max(1, round(surge_s))}s]))"
    samples = drill.observer.prometheus.query(query)
    if not samples:
        raise drill.inconclusive("the engines' waiting requests were read", f"{query}: empty")
    waiting = drill.measure("engine_waiting_max", samples[0].value)
    drill.check_together(
        ("no admitted request waits longer than the bound for a slot",
         longest <= cfg.max_queue_wait_s,
         f"longest {longest:.3f}s (bound {cfg.max_queue_wait_s:g}s)"),
        ("the engines' queues stay bounded", waiting <= cfg.max_engine_waiting,
         f"at most {waiting:.0f} waiting on a node (bound {cfg.max_engine_waiting})"))


def judge_recovery(drill: Drill, ended: float) -> None:
    cfg = drill.config.overload
    await_recovery(drill, "the stack serves as at steady state after the surge, without a "
                   "restart", since=ended, within=cfg.recovery_within_s,
                   check=lambda: not serving_problems(drill),
                   seen=lambda: serving_problems(drill), since_what="the surge")
    ttft = drill.measure("ttft_after_surge_s", streamed_ttft(drill, drill.stack.front_door_url))
    bound = drill.config.steady.ttft_p95_s
    drill.check("a user is answered as fast as at steady state after the surge",
                ttft <= bound, f"TTFT {ttft:.3f}s (bound {bound:g}s)")


def test_overload(start_drill: StartDrill) -> None:
    with start_drill("overload") as drill:
        run_overload(drill)


# The client side: Retry-After honoured.

def told_to_wait(drill: Drill) -> list[HttpError]:
    """A share of the users' requests answered 429 with Retry-After, in front of every
    gateway (only completions: the front door's health checks pass)."""
    cfg = drill.config.retry_after
    return [HttpError(drill.stack.fault_proxy, gateway, status=429, retry_after_s=cfg.retry_after_s,
                      path_prefix="/v1/", toxicity=cfg.toxicity,
                      message="drill: told to come back later")
            for gateway in drill.stack.gateway_names]


def patient_users(drill: Drill) -> LoadSpec:
    """Evenly spaced, so that every one of ``requests`` is sent (Poisson arrivals over the
    same window sent 32 of 40 once, and 14 were told to wait, near ``min_told``)."""
    cfg = drill.config.retry_after
    retries = RetryPolicy(max_attempts=cfg.max_attempts, retry_after_cap_s=cfg.retry_after_cap_s,
                          retry_after_jitter=cfg.jitter)
    return LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    rate=cfg.rate_per_s, arrival=Arrival.CONSTANT, max_requests=cfg.requests,
                    duration_s=cfg.requests / cfg.rate_per_s + 1, drain_s=90,
                    output_len=parse_lengths("16", field_name="output_len"),
                    policy=ClientPolicy(timeouts=Timeouts(connect=5.0, read=30.0),
                                        retries=retries))


def run_clients_honour_retry_after(drill: Drill) -> None:
    ensure_steady(drill)
    cfg = drill.config.retry_after
    began = drill.phase("told to wait")
    with ExitStack() as faults:
        for fault in told_to_wait(drill):
            faults.enter_context(fault)
        drill.load(patient_users(drill)).start().wait(
            within=cfg.requests / cfg.rate_per_s + 120)
    attempts = front_door_log(drill).by_client_id(began, drill.phase("users done"))
    judge_retries(drill, attempts)


def retry_waits(attempts: dict[str, list[FrontDoorRequest]]) -> list[tuple[str, float]]:
    """How long each client waited after a 429 before its next attempt arrived: from the
    front door's end of the 429 to its arrival of the retry, both in its log."""
    return [(key, later.arrived_at - earlier.ended_at) for key, tries in attempts.items()
            for earlier, later in pairwise(tries) if earlier.status == 429]


def judge_retries(drill: Drill, attempts: dict[str, list[FrontDoorRequest]]) -> None:
    cfg = drill.config.retry_after
    told = [a for a in attempts.values() if any(r.status == 429 for r in a)]
    drill.measure("requests_told_to_wait", len(told))
    seen = f"{len(told)} of {len(attempts)} requests got a 429 (the front door's log)"
    if len(told) < cfg.min_told:
        raise drill.inconclusive("users were told to wait (429 with Retry-After)", seen)
    drill.check("users were told to wait (429 with Retry-After)", True, seen)
    waits = retry_waits(attempts)
    early = [f"{key}: {wait:.3f}s" for key, wait in waits
             if wait < cfg.retry_after_s - LOG_RESOLUTION_S]
    delays = [wait for _, wait in waits]
    spread = max(delays, default=0.0) - min(delays, default=0.0)
    drill.measure("retry_wait_min_s", min(delays, default=0.0))
    drill.measure("retry_wait_max_s", max(delays, default=0.0))
    over = [f"{key}: {len(tries)}" for key, tries in attempts.items()
            if len(tries) > cfg.max_attempts]
    gave_up = [f"{key}: {len(tries)} attempts" for key, tries in attempts.items()
               if tries[-1].status == 429 and len(tries) < cfg.max_attempts]
    drill.check_together(
        ("clients come back no sooner than Retry-After says", bool(waits) and not early,
         f"{len(early)} of {len(waits)} retries early (told {cfg.retry_after_s}s): {early[:5]}"),
        ("clients spread their retries (jitter, no herd)", spread >= cfg.min_spread_s,
         f"retries came {min(delays, default=0):.2f}-{max(delays, default=0):.2f}s after "
         f"the 429 (spread {spread:.2f}s, at least {cfg.min_spread_s:g}s)"),
        ("clients stay within their attempt budget", not over,
         f"over {cfg.max_attempts}: {over[:5]}"),
        ("clients retry until their budget is spent", not gave_up,
         f"gave up early: {gave_up[:5]}"))


def test_clients_honour_retry_after(start_drill: StartDrill) -> None:
    with start_drill("retry_after") as drill:
        run_clients_honour_retry_after(drill)
