"""The gateways' worker API (vllm-router): take a worker out or put it back, and prove it."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from harness.clock import Clock
from harness.errors import Unreachable
from harness.waits import Probe, Wait


class Gateways:
    """Every gateway of the stack, driven through ``/remove_worker`` and read via ``/workers``."""

    def __init__(self, urls: Sequence[str], http: httpx.Client, clock: Clock,
                 verify_within_s: float = 10.0) -> None:
        self.urls, self.http, self.clock = tuple(urls), http, clock
        self.verify_within_s = verify_within_s

    def routing_to(self, worker: str) -> tuple[str, ...]:
        """The gateways whose worker list holds ``worker`` now."""
        return tuple(gw for gw in self.urls if worker in self._workers(gw))

    def remove(self, worker: str) -> tuple[str, ...]:
        """Ask every gateway still routing to ``worker`` to drop it; wait until none does.

        Returns the gateways it was removed from; raises :class:`NotReady` naming the
        gateways that still route to it when the bound passes."""
        removed = self.routing_to(worker)
        for gw in removed:
            self._post(gw, "remove_worker", worker)
        def gone() -> Probe[None]:
            still = self.routing_to(worker)
            return Probe(not still, None, f"still routed by {', '.join(still)}")

        Wait(within=self.verify_within_s, interval=0.2, transient=(Unreachable,),
             clock=self.clock).until(f"every gateway to stop routing to {worker}", gone)
        return removed

    def add(self, worker: str) -> tuple[str, ...]:
        """Ask every gateway not yet routing to ``worker`` to take it; wait until all do.

        Returns the gateways it was added to; raises :class:`NotReady` naming the ones
        that still do not list it when the bound passes."""
        added = tuple(gw for gw in self.urls if gw not in self.routing_to(worker))
        for gw in added:
            self._post(gw, "add_worker", worker)
        def listed() -> Probe[None]:
            missing = set(self.urls) - set(self.routing_to(worker))
            return Probe(not missing, None, f"not routed by {', '.join(sorted(missing))}")

        Wait(within=self.verify_within_s, interval=0.2, transient=(Unreachable,),
             clock=self.clock).until(f"every gateway to route to {worker}", listed)
        return added

    def _post(self, gateway: str, verb: str, worker: str) -> None:
        try:
            response = self.http.post(f"{gateway}/{verb}", params={"url": worker},
                                      timeout=30.0)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{gateway}/{verb}", "200", str(exc)) from exc
        if response.status_code != 200:
            raise Unreachable(f"{gateway}/{verb}", "200",
                              f"HTTP {response.status_code}: {response.text[:160]}")

    def _workers(self, gateway: str) -> frozenset[str]:
        try:
            response = self.http.get(f"{gateway}/workers", timeout=5.0)
            workers = response.json()["workers"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise Unreachable(f"{gateway}/workers", "a worker list", str(exc)) from exc
        return frozenset(str(w["url"]) for w in workers)

