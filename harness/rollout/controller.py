"""The rollout controller: analyse each canary every step, promote it or roll it back.

A canary is registered (``POST /canaries``, as a deploy starts a rollout) with its URL as
the gateways know it and the stable node(s) to compare it with. Every ``interval_s`` the
controller reads both (:mod:`harness.rollout.signals`) and judges the step
(:mod:`harness.rollout.analysis`). After ``failed_checks`` failing steps in a row it takes
the canary out of every gateway and proves it left their worker lists; after
``analysis_steps`` passing steps it promotes it. Decisions are exported as metrics.

Shadow traffic: :meth:`Controller.answer` serves a request from stable (what the user
gets) and :meth:`Controller.mirror` sends the same request to the canary and compares the
answers, counted per outcome; the canary never answers a user.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge

from harness.clock import Clock
from harness.errors import NotReady, Unreachable
from harness.rollout.analysis import Verdict, compare_outputs, judge
from harness.rollout.gateways import Gateways
from harness.rollout.signals import (
    Prober,
    ProbeResult,
    PrometheusReadings,
    Target,
    reading_from_probes,
    seeded_prompts,
)
from harness.topology import RolloutPolicy


class State(StrEnum):
    ANALYSING = "analysing"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class CanarySpec:
    """What a deploy tells the controller: the canary (URL as the gateways route to it)
    and the stable node(s) it must hold up against."""

    name: str
    url: str
    stable: tuple[Target, ...]

    def __post_init__(self) -> None:
        if not self.name or not self.url or not self.stable:
            raise ValueError("a canary needs a name, a url and at least one stable node")


@dataclass(frozen=True)
class Step:
    at: float
    passed: bool
    failures: tuple[str, ...]
    ttft_ratio: float | None
    tps_ratio: float | None
    error_ratio: float | None
    output_match_ratio: float | None


@dataclass(frozen=True)
class Rollout:
    """A canary's analysis so far (the body of ``GET /canaries/<name>``)."""

    spec: CanarySpec
    started_at: float
    state: State = State.ANALYSING
    steps: tuple[Step, ...] = ()
    reason: str = ""
    decided_at: float | None = None
    removed_from: tuple[str, ...] = ()

    @property
    def failing_in_a_row(self) -> int:
        count = 0
        for step in reversed(self.steps):
            if step.passed:
                break
            count += 1
        return count

    @property
    def passed_steps(self) -> int:
        return sum(step.passed for step in self.steps)


class RolloutMetrics:
    """What the controller exports on ``/metrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter("llmdrill_rollout_decisions", "Rollout decisions per canary",
                                 ["canary", "decision"], registry=registry)
        self.in_rotation = Gauge("llmdrill_rollout_canary_in_rotation",
                                 "1 while the canary is in the gateways' rotation",
                                 ["canary"], registry=registry)
        self.steps = Counter("llmdrill_rollout_analysis_steps", "Analysis steps per result",
                             ["canary", "result"], registry=registry)
        self.failing = Gauge("llmdrill_rollout_failed_checks",
                             "Consecutive failing analysis steps", ["canary"], registry=registry)
        self.signal = Gauge("llmdrill_rollout_analysis",
                            "Last step's canary signal against stable (ratios; error share)",
                            ["canary", "signal"], registry=registry)
        self.shadow = Counter("llmdrill_rollout_shadow_requests",
                              "Requests mirrored to a canary, by comparison outcome",
                              ["canary", "outcome"], registry=registry)

    def registered(self, name: str) -> None:
        for decision in State.PROMOTED, State.ROLLED_BACK:  # present at 0: increase() sees 0->1
            self.decisions.labels(name, decision.value)
        for result in "passed", "failed":
            self.steps.labels(name, result)
        self.in_rotation.labels(name).set(1)
        self.failing.labels(name).set(0)

    def stepped(self, rollout: Rollout, verdict: Verdict) -> None:
        name = rollout.spec.name
        self.steps.labels(name, "passed" if verdict.passed else "failed").inc()
        self.failing.labels(name).set(rollout.failing_in_a_row)
        for signal, value in (("ttft_ratio", verdict.ttft_ratio), ("tps_ratio", verdict.tps_ratio),
                              ("error_ratio", verdict.error_ratio),
                              ("output_match_ratio", verdict.output_match_ratio)):
            self.signal.labels(name, signal).set(float("nan") if value is None else value)

    def decided(self, rollout: Rollout) -> None:
        self.decisions.labels(rollout.spec.name, rollout.state.value).inc()
        if rollout.state is State.ROLLED_BACK:
            self.in_rotation.labels(rollout.spec.name).set(0)


class Controller:
    """Holds every rollout; :meth:`step` runs one analysis step for each still analysing."""

    def __init__(self, policy: RolloutPolicy, prober: Prober, prometheus: PrometheusReadings,
                 gateways: Gateways, clock: Clock, *, registry: CollectorRegistry) -> None:
        self.policy, self.prober, self.prometheus = policy, prober, prometheus
        self.gateways, self.clock = gateways, clock
        self.metrics = RolloutMetrics(registry)
        self.prompts = seeded_prompts(policy)
        self._rollouts: dict[str, Rollout] = {}
        self._lock = threading.Lock()

    def register(self, spec: CanarySpec) -> Rollout:
        """Start analysing ``spec`` (a new analysis if the name was seen before)."""
        rollout = Rollout(spec, started_at=self.clock.wall())
        with self._lock:
            self._rollouts[spec.name] = rollout
        self.metrics.registered(spec.name)
        return rollout

    def status(self, name: str) -> Rollout | None:
        with self._lock:
            return self._rollouts.get(name)

    def analysing(self) -> tuple[Rollout, ...]:
        with self._lock:
            return tuple(r for r in self._rollouts.values() if r.state is State.ANALYSING)

    def step(self) -> None:
        for rollout in self.analysing():
            self._save(self._advance(rollout))

    def _advance(self, rollout: Rollout) -> Rollout:
        verdict = self._analyse(rollout.spec)
        step = Step(self.clock.wall(), verdict.passed, verdict.failures, verdict.ttft_ratio,
                    verdict.tps_ratio, verdict.error_ratio, verdict.output_match_ratio)
        rollout = replace(rollout, steps=(*rollout.steps, step))
        self.metrics.stepped(rollout, verdict)
        if rollout.failing_in_a_row >= self.policy.failed_checks:
            return self._roll_back(rollout, "; ".join(verdict.failures))
        if rollout.passed_steps >= self.policy.analysis_steps:
            return self._decide(rollout, State.PROMOTED,
                                f"{rollout.passed_steps} passing steps: canary "
                                f"{verdict.canary.describe()}; stable {verdict.stable.describe()}")
        return rollout

    def _analyse(self, spec: CanarySpec) -> Verdict:
        canary_target, stable_target = Target(spec.name, spec.url), spec.stable[0]
        canary_probes, stable_probes = self._probe_interleaved(canary_target, stable_target)
        canary = reading_from_probes(canary_probes).worse(self.prometheus.read([spec.name]))
        stable = reading_from_probes(stable_probes).worse(
            self.prometheus.read([t.name for t in spec.stable]))
        return judge(self.policy, canary, stable, compare_outputs(canary_probes, stable_probes))

    def _probe_interleaved(self, canary: Target,
                           stable: Target) -> tuple[list[ProbeResult], list[ProbeResult]]:
        """Canary and stable take turns going first, so host noise falls on both alike."""
        on_canary: list[ProbeResult] = []
        on_stable: list[ProbeResult] = []
        for index, prompt in enumerate(self.prompts):
            order = ((canary, on_canary), (stable, on_stable))
            for target, into in order if index % 2 == 0 else order[::-1]:
                into.append(self.prober.probe(target, prompt))
        return on_canary, on_stable

    def _roll_back(self, rollout: Rollout, reason: str) -> Rollout:
        try:
            removed = self.gateways.remove(rollout.spec.url)
        except (NotReady, Unreachable) as exc:
            return replace(rollout, reason=f"{reason}; rollback NOT verified: {exc}")
        rollout = replace(rollout, removed_from=removed)
        return self._decide(rollout, State.ROLLED_BACK, reason)

    def _decide(self, rollout: Rollout, state: State, reason: str) -> Rollout:
        rollout = replace(rollout, state=state, reason=reason, decided_at=self.clock.wall())
        self.metrics.decided(rollout)
        return rollout

    def _save(self, rollout: Rollout) -> None:
        with self._lock:
            if self._rollouts.get(rollout.spec.name, rollout).started_at == rollout.started_at:
                self._rollouts[rollout.spec.name] = rollout

    # -- shadow traffic --------------------------------------------------------------------
    def answer(self, name: str, prompt: str) -> ProbeResult:
        """What a user gets for ``prompt``: stable's answer, never the canary's."""
        rollout = self._known(name)
        return self.prober.probe(rollout.spec.stable[0], prompt)

    def mirror(self, name: str, served: ProbeResult) -> str:
        """Send the request ``served`` answered to the canary too; compare; count."""
        rollout = self._known(name)
        shadow = self.prober.probe(Target(name, rollout.spec.url), served.prompt)
        outcome = ("error" if not (shadow.ok and served.ok)
                   else "match" if shadow.same_answer(served) else "mismatch")
        self.metrics.shadow.labels(name, outcome).inc()
        return outcome

    def _known(self, name: str) -> Rollout:
        rollout = self.status(name)
        if rollout is None:
            raise KeyError(name)
        return rollout
