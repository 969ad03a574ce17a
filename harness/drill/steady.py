"""Steady state: the stack a drill may start from, or the drill refuses to start.

Steady means: every component runs; no toxic is left on the fault proxy; no alert is
pending or firing; every node idle with KV at baseline; every gateway sees every node
healthy; every front-door backend is UP; probe requests through the front door all
succeed within the TTFT bound; and all of that still holds once Prometheus has scraped
and evaluated its rules after the probes. A drill waits (with a deadline) for this, so the
one before it may still be settling; past the deadline it is INCONCLUSIVE (steady state
is its precondition: it cannot judge recovery from a stack that never was steady),
naming what is off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

import httpx

from harness.drill.run import STEADY_PROPERTY, DrillRun
from harness.errors import HarnessError, NotReady
from harness.load import LoadSpec, parse_lengths
from harness.observe import TimelineSample, TimelineTargets
from harness.observe.timeline import Timeline
from harness.waits import Probe, Wait

NOT_STEADY = "the stack is not at steady state; the drill refuses to start"


def component_problems(drill: DrillRun) -> list[str]:
    stack, t = drill.stack, drill.stack.topology
    names = [*stack.node_names, *stack.gateway_names, t.front_door.name, t.fault_proxy.name,
             t.prometheus.name, t.alertmanager.name, t.webhook.name]
    return [f"{n} is not running" for n in names if not stack.is_running(n)]


def sample_problems(drill: DrillRun, sample: TimelineSample) -> list[str]:
    in_rotation = set(drill.stack.node_names)
    baseline = drill.stack.topology.thresholds.kv_release_baseline
    problems = [f"node {n.node}: {_node_state(n.up, n.running, n.waiting, n.kv_usage)}"
                for n in sample.nodes if n.node in in_rotation
                and not (n.up and n.running == 0 and n.waiting == 0
                         and n.kv_usage is not None and n.kv_usage <= baseline)]
    # gateways keep the last gauges of removed workers (the canary): only ask about nodes
    node_urls = {drill.stack.node_proxied_url(n) for n in in_rotation}
    workers = [w for w in sample.workers if w.worker in node_urls]
    problems += [f"{w.gateway} sees {w.worker} unhealthy" for w in workers
                 if w.healthy is False]
    problems += [f"{w.gateway}'s circuit breaker towards {w.worker} is {w.circuit}"
                 for w in workers if w.circuit not in (None, "closed")]
    problems += [f"front door backend {b.server} is {b.state}" for b in sample.frontdoor
                 if b.state != "UP"]
    return problems


def _node_state(up: bool, running: float | None, waiting: float | None,
                kv: float | None) -> str:
    if not up:
        return "metrics unreachable"
    return f"running={running} waiting={waiting} kv={kv}"


def alert_problems(drill: DrillRun) -> list[str]:
    return [f"alert {a.name} is {a.state} {dict(a.labels)}"
            for a in drill.observer.prometheus.alerts()]


def toxic_problems(drill: DrillRun) -> list[str]:
    client = drill.stack.fault_proxy
    return [f"toxic {x.name} left on {p.name}" for p in client.proxies().values()
            for x in p.toxics] + [f"proxy {p.name} disabled" for p in client.proxies().values()
                                  if not p.enabled]


def serving_problems(drill: DrillRun) -> list[str]:
    """What keeps the stack from serving as it does at steady state: a component not
    running, a node busy or holding KV, a gateway or front-door backend that sees a
    component unhealthy. Alerts and toxics are left out: after a fault, the alerts
    resolve on their own clock."""
    targets = TimelineTargets.from_topology(drill.stack.topology, drill.http)
    sample = Timeline(targets).sample_once()
    return component_problems(drill) + sample_problems(drill, sample)


def all_problems(drill: DrillRun) -> list[str]:
    return serving_problems(drill) + toxic_problems(drill) + alert_problems(drill)


def ensure_steady(drill: DrillRun) -> None:
    """Wait for steady state, probes included, then start; abort the drill (not the
    stack) if it never is within ``steady.settle_within_s``.

    The probe requests are part of the wait: a stack whose first requests after a
    restart are slow is settling, not steady, and may still settle in time.
    """
    within = drill.config.steady.settle_within_s
    rounds = ProbeRounds()
    try:
        Wait(within=within, interval=1.0, transient=(OSError, HarnessError)).until(
            "steady state", lambda: _steady_probe(drill, rounds))
    except NotReady as exc:
        _abort(drill, f"{NOT_STEADY}: {exc.last_seen}")
    drill.steady_at = drill.phase("steady state")
    summary = rounds.passed
    assert summary is not None  # the wait ends only on a passing round
    drill.measure("steady_ttft_p95_s", summary.ttft_p95_s)
    drill.measure("steady_probe_rounds", summary.round)
    drill.check(STEADY_PROPERTY, True,
                f"{summary.requests} probes ok, TTFT p95 {summary.ttft_p95_s:.3f}s"
                f" (probe round {summary.round}){rounds.describe()}")


@dataclass
class ProbeRounds:
    """Probe rounds run so far while waiting, and the one that passed."""

    count: int = 0
    passed: ProbeSummary | None = None
    #: what kept the stack from steady state while waiting, each named once, oldest first
    waited_on: list[str] = field(default_factory=list)

    def saw(self, problems: Sequence[str]) -> None:
        self.waited_on.extend(p for p in problems if p not in self.waited_on)

    def describe(self, shown: int = 6) -> str:
        if not self.waited_on:
            return ""
        more = len(self.waited_on) - shown
        return (f"; waited on: {'; '.join(self.waited_on[:shown])}"
                + (f" (and {more} more)" if more > 0 else ""))


@dataclass(frozen=True)
class ProbeSummary:
    """One round of probe requests that met the steady bounds."""

    requests: int
    ttft_p95_s: float
    round: int


def _steady_probe(drill: DrillRun, rounds: ProbeRounds) -> Probe[None]:
    problems = all_problems(drill)
    rounds.saw(problems)
    if problems:
        _trickle(drill)
        return Probe(done=False, seen="; ".join(problems))
    rounds.count += 1
    probed = _probe_requests(drill, rounds)
    if not probed.done:
        return probed
    after = problems_after_next_evaluation(drill)
    rounds.saw(after)
    if after:
        rounds.passed = None
        return Probe(done=False, seen="after the probe requests: " + "; ".join(after))
    return probed


def problems_after_next_evaluation(drill: DrillRun) -> list[str]:
    """Everything steady state checks, again once Prometheus has scraped and evaluated
    its rules after now. An alert can still fire from samples scraped before: a circuit
    breaker the previous drill left open and the probes closed fires CircuitOpen (it
    looks back 30 s) seconds later, inside the next drill. Not steady until that is over.
    """
    drill.await_evaluation_after_now()
    return [p for p in all_problems(drill) if not _moved_by_the_probes(p)]


#: Alerts on the users' traffic that the probe requests themselves move: a trickle of
#: probes after a drill's heavy load reads as a tokens/s drop against the rate of a few
#: minutes before (TPSDrop), and the probes feed the client's TTFT histogram. Judged
#: before the probes (quiet, or the probes do not start), not after them: else the probes
#: would keep the gate from ever passing (two INCONCLUSIVE drills in a CI run).
MOVED_BY_THE_PROBES = ("TPSDrop", "TTFTHigh")


def _moved_by_the_probes(problem: str) -> bool:
    return any(problem.startswith(f"alert {name} ") for name in MOVED_BY_THE_PROBES)


def _trickle(drill: DrillRun) -> None:
    """A little traffic to every node through every gateway while waiting: a circuit
    breaker only closes again after successful requests, as under production traffic."""
    body = {"model": drill.stack.model, "prompt": "steady?", "max_tokens": 1}
    for gateway in drill.stack.gateway_names:
        for _ in drill.stack.node_names:
            with contextlib.suppress(httpx.HTTPError):
                drill.http.post(f"{drill.stack.gateway_url(gateway)}/v1/completions",
                                json=body, timeout=5.0)


def _probe_requests(drill: DrillRun, rounds: ProbeRounds) -> Probe[None]:
    """A few requests through the front door: every one answered, TTFT p95 in bound."""
    cfg = drill.config.steady
    spec = LoadSpec(target=drill.stack.front_door_url, model=drill.stack.model,
                    max_requests=cfg.probe_requests, duration_s=60, concurrency=1,
                    output_len=parse_lengths("16", field_name="steady.output_len"))
    results = drill.load(spec).start().wait()
    summary = drill.summarize(f"steady probe {rounds.count}", results)
    p95 = summary.ttft_p95_s
    failed = summary.requests - summary.ok
    if failed / max(1, summary.requests) > cfg.max_error_ratio or p95 is None \
            or p95 > cfg.ttft_p95_s:
        return Probe(done=False, seen=f"probe requests {failed} of {summary.requests} "
                                      f"failed, TTFT p95 {p95} s (bound {cfg.ttft_p95_s} s)")
    rounds.passed = ProbeSummary(requests=summary.requests, ttft_p95_s=p95, round=rounds.count)
    return Probe(done=True, seen=f"TTFT p95 {p95:.3f}s")


def _abort(drill: DrillRun, detail: str) -> NoReturn:
    drill.aborted = True
    raise drill.inconclusive(STEADY_PROPERTY, detail)
