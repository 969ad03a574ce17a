"""Readiness that is real: a node is ready when a completion succeeds, not on /health."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from harness.errors import ComponentFailed
from harness.stack.components import ComponentSpec, ReadyCheck
from harness.waits import Probe, Wait

TRANSIENT = (httpx.TransportError, OSError)


def probe_once(spec: ComponentSpec, client: httpx.Client, model: str) -> Probe[None]:
    if spec.ready_check is ReadyCheck.HTTP_OK:
        response = client.get(spec.ready_url)
    else:
        response = client.post(f"{spec.ready_url}/v1/completions", json={
            "model": model, "prompt": "ready", "max_tokens": 2, "temperature": 0})
    if response.status_code == 200:
        return Probe(done=True)
    return Probe(done=False, seen=f"HTTP {response.status_code}: {response.text[:200]}")


def wait_ready(spec: ComponentSpec, client: httpx.Client, model: str,
               alive: Callable[[], str | None], within: float | None = None) -> None:
    """Poll until ready; ``alive`` returns a reason when the process has died."""
    def probe() -> Probe[None]:
        death = alive()
        if death is not None:
            raise ComponentFailed(spec.name, death)
        return probe_once(spec, client, model)

    Wait(within=within or spec.start_timeout_s, interval=0.5, transient=TRANSIENT).until(
        f"{spec.name} to be ready ({spec.ready_check.value} at {spec.ready_url})", probe)
