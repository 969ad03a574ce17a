"""A stack that runs elsewhere: URLs from the topology, no process or memory control.

It keeps the :class:`~harness.stack.runtime.Runtime` contract by reading over HTTP
what it can (running = the component answers; healthy = its readiness probe passes)
and refusing, with :class:`~harness.errors.Unsupported`, what needs control it lacks.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from harness.errors import ComponentFailed, HarnessError, Unsupported
from harness.runs import Paths
from harness.stack import components as comp
from harness.stack.readiness import TRANSIENT, probe_once, wait_ready
from harness.stack.runtime import Capability, MemoryControl, NetworkControl
from harness.topology import Topology

ATTACHED_HINT = ("needs a stack started by llm-drill on this host (`llm-drill up` or the "
                 "pytest `stack` fixture); this one is attached")
NO_LOGS = "(logs of an attached stack are not available to llm-drill)"
# What llm-drill would run; an attached stack's components may run anything.
NOMINAL_BINARIES = comp.Binaries(router="vllm-router", haproxy="haproxy",
                                 prometheus="prometheus", alertmanager="alertmanager")


def nominal_specs(t: Topology) -> dict[str, comp.ComponentSpec]:
    """The topology's components for a stack llm-drill did not start: URLs and readiness
    are real, argv is what llm-drill would run."""
    models = {n.name: Path(t.node_revision(n)) for n in t.all_nodes()}
    return comp.build_specs(t, Paths(Path(".")), NOMINAL_BINARIES, models, None)


class ExternalRuntime:
    """Attach to a stack someone else runs: observe it, never control it."""

    name = "external"
    capabilities: frozenset[Capability] = frozenset()
    memory: MemoryControl | None = None
    network: NetworkControl | None = None

    def __init__(self, topology: Topology, http: httpx.Client | None = None) -> None:
        self.topology = topology
        self._http = http
        self._specs: dict[str, comp.ComponentSpec] = {}

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        return self._http

    def up(self) -> None:
        """Nothing to start: it already runs."""

    def down(self) -> None:
        """Nothing to stop: we did not start it."""

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def specs(self) -> dict[str, comp.ComponentSpec]:
        """The topology's components; ``argv`` is what llm-drill would run, not what runs."""
        if not self._specs:
            self._specs = nominal_specs(self.topology)
        return self._specs

    # -- refused: no process control -------------------------------------------------------
    def start(self, name: str) -> None:
        raise self._refuse(f"starting {name}", name)

    def signal(self, name: str, sig: signal.Signals) -> None:
        raise self._refuse(f"sending {sig.name} to {name}", name)

    def kill(self, name: str) -> int | None:
        raise self._refuse(f"killing {name}", name)

    def stop(self, name: str, grace_s: float = 10.0) -> int | None:
        raise self._refuse(f"stopping {name}", name)

    # -- read over HTTP ----------------------------------------------------------------------
    def wait_ready(self, name: str, within: float | None = None) -> float:
        spec = self._spec(name)
        began = time.monotonic()
        try:
            wait_ready(spec, self.http, self.topology.model.served_name, lambda: None, within)
        except HarnessError as exc:
            raise ComponentFailed(name, str(exc)) from exc
        return time.monotonic() - began

    def pid(self, name: str) -> int | None:
        comp.require_known(self.topology, name)
        return None

    def pids(self, name: str) -> tuple[int, ...]:
        comp.require_known(self.topology, name)
        return ()

    def is_running(self, name: str) -> bool:
        """It accepts connections and answers HTTP on its readiness URL (any status)."""
        try:
            self.http.get(self._spec(name).ready_url)
        except (*TRANSIENT, httpx.HTTPError):
            return False
        return True

    def healthy(self, name: str) -> bool:
        spec = self._spec(name)
        try:
            return probe_once(spec, self.http, self.topology.model.served_name).done
        except (*TRANSIENT, httpx.HTTPError):
            return False

    def log_tail(self, name: str, lines: int = 20) -> str:
        comp.require_known(self.topology, name)
        return NO_LOGS

    def gave_up(self, name: str) -> str | None:
        """Nothing here sees the stack's supervisor: it may always restart it."""
        comp.require_known(self.topology, name)
        return None

    def _spec(self, name: str) -> comp.ComponentSpec:
        comp.require_known(self.topology, name)
        return self.specs()[name]

    def _refuse(self, action: str, name: str) -> Unsupported:
        comp.require_known(self.topology, name)
        return Unsupported(Capability.PROCESS_CONTROL.value, self.name, action, ATTACHED_HINT)
