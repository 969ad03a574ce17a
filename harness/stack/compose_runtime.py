"""Drills against a stack someone else started with compose, on a Docker-API engine.

``llm-drill attach --compose-project NAME`` (and pytest ``--compose-project NAME``) maps
the project's running containers to the stack file's components, without rebuilding or
restarting anything: a container is a component when it carries the label
``llm-drill.component=<name>`` (the generated ``compose/docker-compose.yml`` sets it),
else when its compose service is named like the component. Nodes, gateways, the front
door, Prometheus and Alertmanager are required; a project without one of them is an
error that lists what was found and what is missing. URLs come from the stack file, as
for any attached stack.

What a drill may do on it, said plainly up front (:func:`available_faults`):
- **Process faults** (kill, SIGTERM, SIGSTOP) only where the engine is on this host and
  each container's processes are provably its own (the pid's cgroup names the container
  id): a signal then goes to the host pids, as a crash would, and recovering is the
  engine's restart policy's job. A kill or stop through the engine's API is on purpose
  (the engine does not restart it), and nothing is ever removed: the containers are
  the user's. A remote engine (``DOCKER_HOST=ssh://…``) has no process faults here.
- **Memory caps and OOM kills** on its nodes, where process faults are possible and this
  process may write the memory hierarchy (root): the cap goes to the container's own
  cgroup, never to the engine's record of it (:mod:`harness.stack.attached_memory`).
- **Network toxics**: where the project runs a fault proxy (the embedded one or
  Toxiproxy) that answers ``/proxies`` at the stack file's address.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from harness.errors import ComponentFailed, HarnessError, StackError, Unsupported
from harness.runs import Paths
from harness.stack import components as comp
from harness.stack.attached_memory import attached_memory, memory_hierarchy_writable
from harness.stack.engine import api_errors, connect, death_of, host_pids, restart_policy
from harness.stack.external import nominal_specs
from harness.stack.readiness import TRANSIENT, probe_once, wait_ready
from harness.stack.runtime import Capability, MemoryControl, NetworkControl
from harness.topology import Topology

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
STOP_WAIT_S = 30.0


@dataclass(frozen=True)
class Listed:
    """One container of the project as the engine lists it."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Roles:
    """Which container plays which component; what the stack file needs and lacks."""

    containers: Mapping[str, str]  # component -> container name
    missing: tuple[str, ...]
    unmapped: tuple[str, ...]  # the project's containers that play no component

    def describe(self, project: str) -> str:
        found = ", ".join(f"{c}={n}" for c, n in sorted(self.containers.items())) or "none"
        return (f"compose project {project!r}: found {found}; missing "
                f"{', '.join(self.missing) or 'nothing'}; not a component: "
                f"{', '.join(self.unmapped) or 'none'}")


def required_components(t: Topology) -> tuple[str, ...]:
    """What a drill cannot do without: the serving path and the alerting path."""
    return (*(n.name for n in t.nodes), *(g.name for g in t.gateways), t.front_door.name,
            t.prometheus.name, t.alertmanager.name)


def map_roles(t: Topology, listed: Iterable[Listed]) -> Roles:
    """Each component of ``t`` to one container: its ``llm-drill.component`` label first,
    else a compose service of the component's name."""
    names = set(comp.component_names(t))
    by_label: dict[str, str] = {}
    by_service: dict[str, str] = {}
    unmapped: list[str] = []
    for item in sorted(listed, key=lambda c: c.name):
        label, service = item.labels.get(comp.COMPONENT_LABEL), item.labels.get(SERVICE_LABEL)
        if label in names:
            by_label.setdefault(label, item.name)
        elif service in names:
            by_service.setdefault(service, item.name)
        else:
            unmapped.append(item.name)
    containers = {**by_service, **by_label}
    missing = tuple(c for c in required_components(t) if c not in containers)
    return Roles(containers, missing, tuple(unmapped))


def owns_pid(container_id: str, pid: int) -> bool:
    """``pid`` on this host belongs to the container: its cgroup path names the id."""
    try:
        return container_id in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


class ComposeRuntime:
    """A compose project's containers as the stack: observed, signalled from this host
    where that is provably safe, never created, removed or reconfigured."""

    name = "compose"
    network: NetworkControl | None = None

    def __init__(self, topology: Topology, project: str, engine_url: str,
                 http: httpx.Client | None = None, *, paths: Paths | None = None,
                 run_id: str = "") -> None:
        """``paths`` and ``run_id``: the attached run's, where memory faults log their
        helpers; without them (``llm-drill attach``'s listing) there is no memory control."""
        self.topology = topology
        self.project = project
        self.engine_url = engine_url
        self.http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        self._engine: docker.DockerClient | None = None
        self._specs: dict[str, comp.ComponentSpec] = {}
        self.roles = map_roles(topology, self._listed())
        local = self._signals_are_local()
        self.memory_possible = local and memory_hierarchy_writable()
        self.memory: MemoryControl | None = (
            attached_memory(self._container_of, self._is_node, paths, run_id)
            if self.memory_possible and paths is not None else None)
        self.capabilities: frozenset[Capability] = frozenset(
            ({Capability.PROCESS_CONTROL} if local else set())
            | ({Capability.MEMORY_CONTROL} if self.memory is not None else set()))

    @property
    def engine(self) -> docker.DockerClient:
        if self._engine is None:
            self._engine = connect(self.engine_url)
        return self._engine

    # -- the whole stack: it is the user's --------------------------------------------------
    def up(self) -> None:
        """Nothing is started: every required component must already run."""
        if self.roles.missing:
            raise StackError(self.roles.describe(self.project))
        down = [c for c in required_components(self.topology) if not self.is_running(c)]
        if down:
            raise StackError(f"compose project {self.project!r}: not running: "
                             f"{', '.join(down)} (start them, e.g. `docker compose up -d`)")

    def down(self) -> None:
        """Nothing is stopped or removed: the project is the user's."""

    def close(self) -> None:
        self.http.close()
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def specs(self) -> dict[str, comp.ComponentSpec]:
        """The stack file's components (URLs, readiness); argv is nominal."""
        if not self._specs:
            self._specs = nominal_specs(self.topology)
        return self._specs

    # -- one component ----------------------------------------------------------------------
    def start(self, name: str) -> None:
        """Start the component's existing container again (after a kill or stop)."""
        self._require_control(f"starting {name}")
        self._container_of(name).start()

    def wait_ready(self, name: str, within: float | None = None) -> float:
        spec = self._spec(name)
        began = time.monotonic()
        try:
            wait_ready(spec, self.http, self.topology.model.served_name,
                       lambda: self._death(name), within)
        except HarnessError as exc:
            reason = exc.reason if isinstance(exc, ComponentFailed) else str(exc)
            raise ComponentFailed(name, reason, self.log_tail(name)) from exc
        return time.monotonic() - began

    def signal(self, name: str, sig: signal.Signals) -> None:
        """``sig`` to every process of the container from this host (a crash, not a
        request to the engine): only pids whose cgroup names the container."""
        self._require_control(f"sending {sig.name} to {name}")
        container = self._container_of(name)
        for pid in self.pids(name):
            if owns_pid(container.id or "", pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def kill(self, name: str) -> int | None:
        """SIGKILL through the engine (on purpose: the engine does not restart it)."""
        self._require_control(f"killing {name}")
        container = self._container_of(name)
        with contextlib.suppress(*api_errors()):
            container.kill()
        return self._exit_status(container)

    def stop(self, name: str, grace_s: float = 10.0) -> int | None:
        self._require_control(f"stopping {name}")
        container = self._container_of(name)
        with contextlib.suppress(*api_errors()):
            container.stop(timeout=max(1, round(grace_s)))
        return self._exit_status(container)

    def pid(self, name: str) -> int | None:
        """The container's main process on this host while it runs (None on a remote
        engine: its pids are another host's)."""
        state = self._state(name)
        live = int(state.get("Pid") or 0) if state else 0
        return live if live and Capability.PROCESS_CONTROL in self.capabilities else None

    def pids(self, name: str) -> tuple[int, ...]:
        if Capability.PROCESS_CONTROL not in self.capabilities:
            comp.require_known(self.topology, name)
            return ()
        container = self._container(name)
        return host_pids(container) if container is not None else ()

    def is_running(self, name: str) -> bool:
        state = self._state(name)
        return bool(state and state.get("Running") and not state.get("Restarting"))

    def healthy(self, name: str) -> bool:
        spec = self._spec(name)
        try:
            return probe_once(spec, self.http, self.topology.model.served_name).done
        except (*TRANSIENT, httpx.HTTPError):
            return False

    def log_tail(self, name: str, lines: int = 20) -> str:
        container = self._container(name)
        if container is None:
            return f"({name} has no container in compose project {self.project!r})"
        with contextlib.suppress(*api_errors()):
            return bytes(container.logs(tail=lines)).decode(errors="replace").rstrip()
        return "(no log)"

    def gave_up(self, name: str) -> str | None:
        """The engine neither runs nor restarts the container (see the container
        runtime's)."""
        comp.require_known(self.topology, name)
        return self._death(name)

    def restart_count(self, name: str) -> int:
        container = self._container(name)
        return int(container.attrs.get("RestartCount", 0)) if container else 0

    def restart_policy_in_effect(self, name: str) -> str:
        """The restart policy the engine holds for ``name``'s container ("" if none): who
        recovers it, if anyone, is the user's engine."""
        return restart_policy(self._container(name))

    # -- internals --------------------------------------------------------------------------
    def _listed(self) -> list[Listed]:
        found = self.engine.containers.list(all=True,
                                            filters={"label": f"{PROJECT_LABEL}={self.project}"})
        return [Listed(c.name or c.id or "?", dict(c.labels)) for c in found]

    def _signals_are_local(self) -> bool:
        """Process faults only when a running container's main pid is on this host and
        provably the container's (a unix-socket engine can still be another host's)."""
        for name in self.roles.containers:
            container = self._container(name)
            pid = int(container.attrs["State"].get("Pid") or 0) if container else 0
            if container is not None and pid:
                return owns_pid(container.id or "", pid)
        return False

    def _is_node(self, name: str) -> bool:
        comp.require_known(self.topology, name)
        return name in {n.name for n in self.topology.nodes}

    def _spec(self, name: str) -> comp.ComponentSpec:
        comp.require_known(self.topology, name)
        return self.specs()[name]

    def _container(self, name: str) -> Container | None:
        from docker.errors import NotFound

        comp.require_known(self.topology, name)
        container_name = self.roles.containers.get(name)
        if container_name is None:
            return None
        try:
            return self.engine.containers.get(container_name)
        except NotFound:
            return None

    def _container_of(self, name: str) -> Container:
        container = self._container(name)
        if container is None:
            raise StackError(f"{name} has no container in compose project {self.project!r} "
                             f"({self.roles.describe(self.project)})")
        return container

    def _state(self, name: str) -> Mapping[str, Any] | None:
        container = self._container(name)
        return container.attrs.get("State") if container is not None else None

    def _death(self, name: str) -> str | None:
        return death_of(self._state(name))

    def _exit_status(self, container: Container) -> int | None:
        with contextlib.suppress(*api_errors()):
            return int(container.wait(timeout=STOP_WAIT_S)["StatusCode"])
        return None

    def _require_control(self, action: str) -> None:
        if Capability.PROCESS_CONTROL not in self.capabilities:
            raise Unsupported(Capability.PROCESS_CONTROL.value, self.name, action,
                              "the engine is not on this host, or its containers' processes "
                              "could not be proven its own")


def available_faults(runtime: ComposeRuntime, http: httpx.Client) -> dict[str, str]:
    """Each kind of fault and whether a drill can inject it on this project (and why
    not), for the user to read before any drill runs."""
    process = (Capability.PROCESS_CONTROL in runtime.capabilities)
    proxy = runtime.topology.fault_proxy
    try:
        toxics = http.get(f"http://{runtime.topology.host}:{proxy.port}/proxies").is_success
    except (*TRANSIENT, httpx.HTTPError):
        toxics = False
    return {
        "process faults (kill, SIGTERM, SIGSTOP)":
            "yes: signals from this host, recovery by the engine's restart policy" if process
            else "no: the engine is not on this host, or its pids are not provably its own",
        "memory caps and OOM kills":
            "yes: on the nodes, through their containers' own memory cgroups (the engine's "
            "record of each container is left as it was)" if runtime.memory_possible
            else "no: needs process faults and root on a cgroup v1 host",
        "network toxics": f"yes: a fault proxy answers on port {proxy.port}" if toxics
            else f"no: no fault proxy answers /proxies on port {proxy.port}",
    }
