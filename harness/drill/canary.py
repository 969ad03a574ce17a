"""A canary deploy as a drill does it, and what it reads back from the rollout controller.

The drill plays the deploy pipeline: it joins the canary to every gateway
(``POST /add_worker``) and registers it with the stack's rollout controller
(``POST /canaries``). The analysis, the decision and the rollback are the controller's
(:mod:`harness.rollout`); the drill only reads them (``GET /canaries/<name>``). Its
teardown may remove a canary it added that the controller left in rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from harness.auth import ROLLOUT_TOKEN_ENV, bearer_headers, token_from_env
from harness.drill.run import DrillRun
from harness.errors import Unreachable
from harness.waits import Probe, Wait


@dataclass(frozen=True)
class RolloutDecision:
    """The controller's word on a canary (``GET /canaries/<name>``)."""

    state: str
    reason: str
    started_at: float
    decided_at: float | None
    steps: int
    removed_from: tuple[str, ...]


def set_canary_in_rotation(drill: DrillRun, canary: str, joined: bool) -> None:
    """Add the canary to (or remove it from) every gateway's worker list."""
    url = drill.stack.node_proxied_url(canary)
    verb = "add_worker" if joined else "remove_worker"
    for gw in drill.stack.gateway_names:
        response = drill.http.post(f"{drill.stack.gateway_url(gw)}/{verb}",
                                   params={"url": url}, timeout=30.0)
        drill.check(f"{gw} accepts {verb} for the canary", response.status_code == 200,
                    f"HTTP {response.status_code}: {response.text[:160]}")


def gateways_routing_to(drill: DrillRun, canary: str) -> tuple[str, ...]:
    """The gateways whose ``/workers`` list the canary now."""
    url = drill.stack.node_proxied_url(canary)
    found = []
    for gw in drill.stack.gateway_names:
        workers = drill.http.get(f"{drill.stack.gateway_url(gw)}/workers").json()["workers"]
        found += [gw] if any(w["url"] == url for w in workers) else []
    return tuple(found)


def gateways_route_to(drill: DrillRun, canary: str) -> bool:
    return bool(gateways_routing_to(drill, canary))


def rollout_url(drill: DrillRun) -> str:
    url = drill.stack.topology.rollout_url
    if url is None:
        raise Unreachable("<rollout controller>", "a rollout entry in the stack file")
    return url


def rollout_auth() -> dict[str, str]:
    """The controller's bearer token, when ``LLM_DRILL_ROLLOUT_TOKEN`` is set."""
    return bearer_headers(token_from_env(ROLLOUT_TOKEN_ENV))


def register_canary(drill: DrillRun, canary: str, stable: tuple[str, ...]) -> RolloutDecision:
    """Start the controller's analysis of ``canary`` against ``stable``."""
    body = {"name": canary, "url": drill.stack.node_proxied_url(canary),
            "stable": [{"name": n, "url": drill.stack.node_proxied_url(n)} for n in stable]}
    response = drill.http.post(f"{rollout_url(drill)}/canaries", json=body, timeout=10.0,
                               headers=rollout_auth())
    drill.check("the rollout controller accepts the canary", response.status_code == 201,
                f"HTTP {response.status_code}: {response.text[:200]}")
    return _decision(response.json())


def rollout_status(drill: DrillRun, canary: str) -> RolloutDecision:
    response = drill.http.get(f"{rollout_url(drill)}/canaries/{canary}", timeout=5.0,
                              headers=rollout_auth())
    if response.status_code != 200:
        raise Unreachable(f"{rollout_url(drill)}/canaries/{canary}", "200",
                          f"HTTP {response.status_code}: {response.text[:160]}")
    return _decision(response.json())


def await_decision(drill: DrillRun, canary: str, within: float) -> RolloutDecision:
    """Wait until the controller has promoted or rolled back ``canary``."""
    def probe() -> Probe[RolloutDecision]:
        status = rollout_status(drill, canary)
        return Probe(status.state != "analysing", status,
                     f"{status.state} after {status.steps} steps: {status.reason}")

    decision = Wait(within=within, interval=0.5, transient=(Unreachable, httpx.HTTPError)).until(
        f"the rollout controller to decide on {canary}", probe)
    assert decision is not None  # a done probe carries its value
    return decision


def _decision(body: dict[str, object]) -> RolloutDecision:
    steps = body.get("steps")
    removed = body.get("removed_from")
    decided = body.get("decided_at")
    return RolloutDecision(
        state=str(body["state"]), reason=str(body.get("reason") or ""),
        started_at=float(str(body["started_at"])),
        decided_at=float(str(decided)) if decided is not None else None,
        steps=len(steps) if isinstance(steps, list) else 0,
        removed_from=tuple(str(g) for g in removed) if isinstance(removed, list) else ())
