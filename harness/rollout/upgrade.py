"""A rolling upgrade: every node onto a new model revision, one node at a time.

The procedure a team runs to replace the weights a fleet serves without turning a user
away (``docs/stack.md``, "Rolling upgrade"). For each node in turn:

1. **drain**: remove it from every gateway (proven by their worker lists);
2. **finish**: wait until its engine holds nothing (vLLM's running + waiting reach 0),
   at most ``drain_within_s``;
3. **stop** it (SIGTERM, SIGKILL after ``stop_grace_s``; the runtime's supervisor
   stops it: never restarted on its own);
4. **start** it on the new revision and wait until it is ready;
5. **warm up**: ``warmup_requests`` completions sent to it directly, each answered;
6. **rejoin**: add it back to every gateway (proven).

Through all six, the alerts the restart raises for that node (``silence``: NodeDown) are
silenced in Alertmanager, as a team does with ``amtool`` so that on-call is not paged for
a planned restart; once the node is back and Alertmanager holds none of them any more,
the silences are expired. A step that fails expires them too: a node that did not come
back pages. Each silence also ends by itself (the procedure's worst-case duration) should
the procedure die.

Each step's time is recorded (:class:`NodeUpgrade`): what the procedure did, for the
drill that watches users through it and for the report. A step that cannot be done
raises (:class:`~harness.errors.NotReady`, :class:`~harness.errors.Unreachable`,
:class:`~harness.errors.StackError`) and leaves the node where it is: out of rotation,
if it was taken out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import httpx

from harness.clients.alertmanager import AlertmanagerClient
from harness.clients.metrics import NodeState, scrape
from harness.clock import Clock, SystemClock
from harness.errors import StackError, Unreachable
from harness.rollout.gateways import Gateways
from harness.topology import UpgradePolicy
from harness.waits import Probe, Wait


class Fleet(Protocol):
    """What the procedure needs of the stack's runtime."""

    def worker_url(self, node: str) -> str: ...    # the node as the gateways route to it

    def node_url(self, node: str) -> str: ...      # its own API

    def stop(self, node: str, grace_s: float) -> None: ...

    def start_on(self, node: str, revision: str) -> None: ...

    def wait_ready(self, node: str, within: float) -> float: ...


@dataclass(frozen=True)
class UpgradePlan:
    """Which revision every node goes to, and how (the stack file's ``rollout.upgrade``)."""

    revision: str
    model: str                      # the served model name the warm-up asks for
    policy: UpgradePolicy = field(default_factory=UpgradePolicy)


@dataclass(frozen=True)
class NodeUpgrade:
    """When each step of one node's upgrade ended (unix time)."""

    node: str
    revision: str
    began_at: float
    in_flight_at_start: float       # its running + waiting when its turn began
    drained_at: float | None        # None: not drained (the plan skipped it)
    in_flight_at_drain: float       # its running + waiting once out of the gateways
    idle_at: float | None           # None: not waited for
    stopped_at: float
    ready_at: float
    warmed_at: float
    rejoined_at: float              # or when it would have (the plan skipped it)
    silences: tuple[str, ...] = ()  # the ids of the silences put on its alerts
    unsilenced_at: float | None = None  # when they were expired


@dataclass
class NodeSilences:
    """The silences on one node's alerts for its turn, and when they were expired."""

    ids: tuple[str, ...] = ()
    expired_at: float | None = None


class RollingUpgrade:
    """Runs an :class:`UpgradePlan` over a fleet, one node at a time."""

    def __init__(self, fleet: Fleet, gateways: Gateways, http: httpx.Client,
                 clock: Clock | None = None, *,
                 alertmanager: AlertmanagerClient | None = None) -> None:
        self.fleet, self.gateways, self.http = fleet, gateways, http
        self.clock = clock or SystemClock()
        self.alertmanager = alertmanager

    def now(self) -> float:
        return self.clock.wall()

    def run(self, plan: UpgradePlan, nodes: Sequence[str]) -> tuple[NodeUpgrade, ...]:
        return tuple(self.upgrade(plan, node) for node in nodes)

    def upgrade(self, plan: UpgradePlan, node: str) -> NodeUpgrade:
        began_at, at_start = self.now(), self.in_flight(node)
        with self.silenced(plan, node) as silences:
            step = self.replace_node(plan, node, began_at, at_start)
        return replace(step, silences=silences.ids, unsilenced_at=silences.expired_at)

    def replace_node(self, plan: UpgradePlan, node: str, began_at: float,
                     at_start: float) -> NodeUpgrade:
        worker, policy = self.fleet.worker_url(node), plan.policy
        drained_at = None
        if policy.drain:
            self.gateways.remove(worker)
            drained_at = self.now()
        in_flight = self.in_flight(node)
        idle_at = (self.await_idle(node, policy.drain_within_s) if policy.finish_in_flight
                   else None)
        self.fleet.stop(node, policy.stop_grace_s)
        stopped_at = self.now()
        self.fleet.start_on(node, plan.revision)
        self.fleet.wait_ready(node, policy.ready_within_s)
        ready_at = self.now()
        self.warm_up(node, plan)
        warmed_at = self.now()
        if policy.rejoin:
            self.gateways.add(worker)
        return NodeUpgrade(node, plan.revision, began_at, at_start, drained_at, in_flight,
                           idle_at, stopped_at, ready_at, warmed_at, rejoined_at=self.now())

    @contextmanager
    def silenced(self, plan: UpgradePlan, node: str) -> Iterator[NodeSilences]:
        """The policy's alerts for ``node`` silenced until they clear after the body,
        expired whatever happens."""
        names, silences = plan.policy.silence, NodeSilences()
        if not names:
            yield silences
            return
        if self.alertmanager is None:
            raise StackError(f"the upgrade policy silences {', '.join(names)} but the "
                             "procedure was given no Alertmanager")
        alertmanager, now = self.alertmanager, self.now()
        ends_at = now + plan.policy.worst_case_s()
        comment = f"rolling upgrade: {node} to {plan.revision}"
        try:
            silences.ids = tuple(
                alertmanager.silence({"alertname": name, "node": node}, starts_at=now,
                                     ends_at=ends_at, comment=comment) for name in names)
            yield silences
            self.await_alerts_clear(alertmanager, plan, node)
        finally:
            for silence_id in silences.ids:
                alertmanager.expire(silence_id)
            silences.expired_at = self.now()

    def await_alerts_clear(self, alertmanager: AlertmanagerClient, plan: UpgradePlan,
                           node: str) -> None:
        """Until Alertmanager holds none of the silenced alerts for ``node`` (Prometheus
        resolved them once it scraped the node again): expiring the silences earlier
        would page for the restart after all."""
        def clear() -> Probe[float]:
            held = [a.name for name in plan.policy.silence
                    for a in alertmanager.held({"alertname": name, "node": node})]
            return Probe(not held, self.now(), f"still held: {held}")

        Wait(within=plan.policy.alerts_clear_within_s, interval=0.5, transient=(Unreachable,),
             clock=self.clock).until(f"Alertmanager to hold no {'/'.join(plan.policy.silence)} "
                                     f"for {node}", clear)

    def in_flight(self, node: str) -> float:
        """What the node's engine holds now: running + waiting, from its own metrics."""
        state = NodeState.from_snapshot(
            node, scrape(self.http, self.fleet.node_url(node) + "/metrics"))
        return state.running + state.waiting

    def await_idle(self, node: str, within: float) -> float:
        """Wait until the node's engine holds nothing; when it did, or raise
        :class:`NotReady` naming what it still holds."""
        def idle() -> Probe[float]:
            held = self.in_flight(node)
            return Probe(held == 0, self.now(), f"{held:g} requests running or waiting")

        idle_at = Wait(within=within, interval=0.2, transient=(Unreachable,),
                       clock=self.clock).until(
            f"{node} to finish what it holds", idle)
        return self.now() if idle_at is None else idle_at

    def warm_up(self, node: str, plan: UpgradePlan) -> None:
        """Completions sent to the node itself; each must be answered."""
        url = self.fleet.node_url(node) + "/v1/completions"
        for index in range(plan.policy.warmup_requests):
            body = {"model": plan.model, "prompt": f"warm-up {index}",
                    "max_tokens": plan.policy.warmup_tokens}
            try:
                response = self.http.post(url, json=body, timeout=60.0)
            except httpx.HTTPError as exc:
                raise Unreachable(url, "a warm-up completion", str(exc)) from exc
            if response.status_code != 200:
                raise StackError(f"{node} on {plan.revision} failed its warm-up: HTTP "
                                 f"{response.status_code}: {response.text[:160]}")
