"""The Stack handle drills, faults and tests hold: URLs by component, and control.

Everything a caller needs from the runtime goes through this handle (nobody reaches
into ``stack.runtime``); what each call promises is the
:class:`~harness.stack.runtime.Runtime` contract.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.clients.toxiproxy import ToxiproxyClient
from harness.errors import ConfigError, StackError, Unsupported
from harness.runs import Paths, default_home, new_run_id, run_dir_for, set_current
from harness.stack.components import ComponentSpec, require_known
from harness.stack.process_runtime import ProcessRuntime
from harness.stack.reaper import Residue, residue
from harness.stack.runtime import (
    Capability,
    ComponentMemory,
    EventSink,
    NetworkControl,
    Runtime,
    ignore_events,
    require,
)
from harness.topology import DEFAULT_STACK_FILE, Topology, load_topology


@dataclass
class Stack:
    topology: Topology
    runtime: Runtime
    run_dir: Path
    run_id: str
    _http: httpx.Client | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.Client:
        """A client for talking to the stack's components (closed with the handle)."""
        if self._http is None:
            self._http = httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        return self._http

    @property
    def fault_proxy(self) -> ToxiproxyClient:
        """The Toxiproxy API of the stack's fault proxy (embedded or real)."""
        return ToxiproxyClient(self.http, self.fault_proxy_url)

    # -- URLs -------------------------------------------------------------------------
    @property
    def front_door_url(self) -> str:
        return self.topology.front_door_url

    @property
    def prometheus_url(self) -> str:
        return self.topology.prometheus_url

    @property
    def alertmanager_url(self) -> str:
        return self.topology.alertmanager_url

    @property
    def fault_proxy_url(self) -> str:
        return self.topology.fault_proxy_url

    @property
    def webhook_url(self) -> str:
        return self.topology.webhook_url

    @property
    def model(self) -> str:
        return self.topology.model.served_name

    def node_url(self, name: str) -> str:
        return self.topology.node_url(name)

    def node_proxied_url(self, name: str) -> str:
        return self.topology.url(self.topology.node(name).proxy_port)

    def gateway_url(self, name: str) -> str:
        return self.topology.url(self.topology.gateway(name).port)

    def gateway_metrics_url(self, name: str) -> str:
        return self.topology.url(self.topology.gateway(name).metrics_port, "/metrics")

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.topology.nodes)

    @property
    def gateway_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.topology.gateways)

    # -- what the runtime offers ----------------------------------------------------------
    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.runtime.capabilities

    def specs(self) -> Mapping[str, ComponentSpec]:
        return self.runtime.specs()

    def use_topology(self, topology: Topology) -> None:
        """Components started from now on run from ``topology`` (a new revision of a
        component, as a deploy would roll out); running ones keep theirs until restarted.
        Raises :class:`Unsupported` on a runtime that cannot start components."""
        switch = getattr(self.runtime, "use_topology", None)
        if switch is None:
            raise Unsupported("starting components from another topology", self.runtime.name,
                              "deploying a new revision")
        switch(topology)
        self.topology = self.runtime.topology  # as the runtime placed it

    # -- reading a component --------------------------------------------------------------
    def pid(self, name: str) -> int | None:
        return self.runtime.pid(name)

    def pids(self, name: str) -> tuple[int, ...]:
        return self.runtime.pids(name)

    def is_running(self, name: str) -> bool:
        return self.runtime.is_running(name)

    def healthy(self, name: str) -> bool:
        return self.runtime.healthy(name)

    def log_tail(self, name: str, lines: int = 20) -> str:
        return self.runtime.log_tail(name, lines)

    def gave_up(self, name: str) -> str | None:
        return self.runtime.gave_up(name)

    def wait_ready(self, name: str, within: float | None = None) -> float:
        return self.runtime.wait_ready(name, within)

    # -- process control ----------------------------------------------------------------
    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int | None:
        if sig is signal.SIGKILL:
            return self.runtime.kill(name)
        if sig is signal.SIGTERM:
            return self.runtime.stop(name)
        self.runtime.signal(name, sig)
        return None

    def crash(self, name: str, sig: signal.Signals = signal.SIGKILL, *,
              main_pid: int | None = None) -> int:
        """Deliver ``sig`` to the component's main process only, as a crash or an outside
        kill would: recovering from it is the stack's job (its supervisor). ``main_pid``
        is that process as read (:meth:`pid`) just before, so the signal leaves at once
        (a busy supervisor answers the lookup late). Returns the pid signalled."""
        require(self.runtime, Capability.PROCESS_CONTROL, f"crashing {name} with {sig.name}")
        pid = self.runtime.pid(name) if main_pid is None else main_pid
        if pid is None:
            raise StackError(f"{name} has no main process to signal in run {self.run_id}")
        os.kill(pid, sig)
        return pid

    def signal_process(self, name: str, pid: int, sig: signal.Signals) -> None:
        """Deliver ``sig`` to one process of the component (one of its :meth:`pids`) and
        to nothing else: a fault in one part of it, such as a node's engine."""
        require(self.runtime, Capability.PROCESS_CONTROL, f"signalling a process of {name}")
        if pid not in self.runtime.pids(name):
            raise StackError(f"pid {pid} is not a process of {name} in run {self.run_id}")
        os.kill(pid, sig)

    def stop(self, name: str, grace_s: float = 10.0) -> int | None:
        """SIGTERM, up to ``grace_s`` to drain, then SIGKILL; the exit status if known."""
        return self.runtime.stop(name, grace_s)

    def signal(self, name: str, sig: signal.Signals) -> None:
        self.runtime.signal(name, sig)

    def start(self, name: str) -> None:
        self.runtime.start(name)

    def restart(self, name: str, within: float | None = None) -> float:
        """Stop (if running), start, and return seconds from start to ready."""
        if self.runtime.pid(name) is not None:
            self.runtime.stop(name)
        self.runtime.start(name)
        return self.runtime.wait_ready(name, within)

    # -- memory control -----------------------------------------------------------------
    def memory(self, name: str) -> ComponentMemory:
        """``name``'s memory domain; :class:`Unsupported` when the runtime has no memory
        control, or none over that component."""
        require_known(self.topology, name)
        control = self.runtime.memory
        if control is None:
            raise Unsupported(Capability.MEMORY_CONTROL.value, self.runtime.name,
                              f"controlling {name}'s memory")
        if not control.controls(name):
            raise Unsupported(Capability.MEMORY_CONTROL.value, self.runtime.name,
                              f"controlling {name}'s memory", f"{name} has no memory domain")
        return ComponentMemory(control, name)

    # -- network partitions -------------------------------------------------------------
    def cut_off(self, name: str) -> None:
        """Take ``name`` off the run's node network (it keeps running; every other
        component loses it); :class:`Unsupported` on a runtime without partitions."""
        self._partitions(name, f"cutting {name} off the network").cut(name)

    def reconnect(self, name: str) -> None:
        """Put ``name`` back on the node network at its address; idempotent."""
        self._partitions(name, f"reconnecting {name}").heal(name)

    def is_cut_off(self, name: str) -> bool:
        return self._partitions(name, f"reading {name}'s network").is_cut(name)

    def _partitions(self, name: str, action: str) -> NetworkControl:
        require_known(self.topology, name)
        control = self.runtime.network
        if control is None:
            raise Unsupported(Capability.NETWORK_PARTITION.value, self.runtime.name, action,
                              "the container runtime with node_network in the stack file")
        return control  # which refuses, naming it, a component off its network

    # -- the whole stack ----------------------------------------------------------------
    def up(self) -> None:
        """Start every component ready for traffic (a no-op for an attached stack)."""
        self.runtime.up()

    def close(self) -> None:
        self.runtime.close()
        if self._http is not None:
            self._http.close()
            self._http = None

    def down(self) -> Residue:
        self.runtime.down()
        self.close()
        set_current(self.run_dir.parent.parent, None)
        return residue(self.run_id)


RUNTIMES = ("process", "container")


def create_stack(stack_file: Path = DEFAULT_STACK_FILE, *, home: Path | None = None,
                 on_event: EventSink = ignore_events, owned_by_me: bool = False,
                 runtime: str = "process") -> Stack:
    """A stack in a new run directory (not started yet), on the process runtime or on
    the container runtime (the engine at ``DOCKER_HOST`` or the project's own)."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}",
                          field="runtime")
    topology = load_topology(stack_file)
    home = home or default_home()
    run_id = new_run_id()
    run_dir = run_dir_for(home, run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = os.getpid() if owned_by_me else None
    chosen: Runtime
    if runtime == "container":
        from harness.stack.container_runtime import ContainerRuntime
        from harness.stack.engine import engine_url

        chosen = ContainerRuntime(topology, run_dir, run_id, stack_file=str(stack_file),
                                  engine_url=engine_url(home), on_event=on_event,
                                  owner_pid=owner)
    else:
        chosen = ProcessRuntime(topology, run_dir, run_id, stack_file=str(stack_file),
                                on_event=on_event, owner_pid=owner)
    return Stack(chosen.topology, chosen, run_dir, run_id)


def attach_stack(run_dir: Path, stack_file: Path | None = None) -> Stack:
    """A handle on a stack started earlier (``llm-drill up``) from its run directory."""
    from harness.runs import load_state

    state = load_state(run_dir)
    if state is None:
        raise FileNotFoundError(f"{run_dir} has no state.json: not a llm-drill run directory")
    path = stack_file or Path(state.stack_file)
    topology = load_topology(path)
    runtime: Runtime
    engine = run_dir / "engine.url"  # written by the container runtime at start
    if engine.exists():
        from harness.stack.container_runtime import ContainerRuntime

        runtime = ContainerRuntime(topology, run_dir, state.run_id, stack_file=str(path),
                                   engine_url=engine.read_text().strip())
    else:
        runtime = ProcessRuntime(topology, run_dir, state.run_id, stack_file=str(path))
    return Stack(runtime.topology, runtime, run_dir, state.run_id)


def attach_compose(project: str, stack_file: Path = DEFAULT_STACK_FILE, *,
                   home: Path | None = None) -> Stack:
    """A handle on a compose project someone else started (``DOCKER_HOST``, else the
    project's own engine), in a new run directory for its journals and report. Raises
    :class:`StackError` listing what was found and what is missing when the project
    lacks a required component or one of them is not running."""
    from harness.stack.compose_runtime import ComposeRuntime
    from harness.stack.engine import engine_url

    topology = load_topology(stack_file)
    home = home or default_home()
    run_id = new_run_id()
    run_dir = run_dir_for(home, run_id)
    runtime = ComposeRuntime(topology, project, engine_url(home), paths=Paths(run_dir),
                             run_id=run_id)
    try:
        runtime.up()
    except BaseException:
        runtime.close()
        raise
    run_dir.mkdir(parents=True, exist_ok=True)
    return Stack(topology, runtime, run_dir, run_id)


@contextmanager
def running_stack(stack_file: Path = DEFAULT_STACK_FILE, *, home: Path | None = None,
                  on_event: EventSink = ignore_events) -> Iterator[Stack]:
    """Bring a stack up for the duration of a ``with`` block; always tear it down."""
    stack = create_stack(stack_file, home=home, on_event=on_event, owned_by_me=True)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
