"""The stack's components as containers on a Docker-API engine, through the ``docker`` SDK.

Each component is one container from the empty base image (``harness.stack.engine``)
with the host's system directories, the project and the llm-drill home bind-mounted,
on the host's network: the same argv, ports and configs as the process runtime, so
drills cannot tell the runtimes apart except by who recovers. Recovery is the engine's:
nodes, gateways and the front door run with the stack file's restart policy
(``on-failure`` becomes the engine's ``unless-stopped``, ``never`` its ``no``), and a
component that dies on its own (a signal from outside, an OOM kill) is restarted by
the engine, never by llm-drill. ``kill`` and ``stop`` go through the engine's API, which
the engine treats as on purpose: no restart, as supervisord's stop in the process runtime.

Everything created carries the labels ``llm-drill.run`` and ``llm-drill.component``;
``remove_run_objects`` removes a run's containers and networks by label (``down``, the watchdog,
and the next start after a SIGKILLed session). Output goes to the run's log files, as
in the process runtime (``logs/<component>.log``).

Memory control (where this host lets llm-drill create memory cgroups, as the process
runtime): a node's container is created inside the node's cgroup
(``cgroup_parent=/llm-drill/<run>/<node>``), so the cap, the OOM-kill count and the
balloon helper work on that parent exactly as in the process runtime, and the kernel's
OOM kill of the node ends its container (exit 137) for the engine to restart.

Networks: every component but the nodes runs on the host's network on loopback. The
nodes run on the run's own internal bridge (the stack file's ``node_network``), each at
a fixed address this host reaches, so that one can be cut off (the partition fault,
:mod:`harness.stack.node_network`); without ``node_network`` they stay on loopback too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from harness.errors import ComponentFailed, HarnessError, StackError
from harness.runs import Paths, ProcRecord, RunState, load_state, save_state
from harness.stack import components as comp
from harness.stack.cgroups import MemoryCgroups, remove_other_hierarchies
from harness.stack.components import COMPONENT_LABEL, RUN_LABEL, require_known
from harness.stack.engine import (
    api_errors,
    connect,
    death_of,
    ensure_base_image,
    host_pids,
    restart_policy,
)
from harness.stack.lifecycle import (
    after_ready,
    bring_up,
    build_host_specs,
    unlist_on_demand,
)
from harness.stack.log_files import tail_of
from harness.stack.node_network import NodeNetworkControl, remove_run_networks
from harness.stack.preflight import check_ports_free
from harness.stack.process_memory import CgroupMemory
from harness.stack.processes import COMPONENT_ENV, RUN_ID_ENV, reap
from harness.stack.readiness import probe_once, wait_ready
from harness.stack.reaper import WATCHDOG, start_watchdog
from harness.stack.runtime import (
    Event,
    EventSink,
    MemoryControl,
    NetworkControl,
    Phase,
    capabilities_with,
    ignore_events,
)
from harness.topology import Topology
from harness.waits import Wait

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

ENGINE_FILE = "engine.url"  # in the run directory: which engine the watchdog must ask
HOST_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc")
LOG_WRAPPER = 'exec "$@" >>"$LLM_DRILL_LOG" 2>&1'
INIT_BINARIES = ("/usr/bin/docker-init", "/usr/bin/tini")
GONE_WITHIN_S = 30.0
HOST_CGROUPS = Path("/host-cgroup")  # where the webhook's container sees the memory hierarchy


class ContainerRuntime:
    """Starts, watches and stops the stack's components as containers. The contract
    it keeps is :class:`~harness.stack.runtime.Runtime`'s."""

    name = "container"

    def __init__(self, topology: Topology, run_dir: Path, run_id: str, *, stack_file: str,
                 engine_url: str, on_event: EventSink = ignore_events,
                 owner_pid: int | None = None, http: httpx.Client | None = None) -> None:
        self.topology = topology.on_node_network()
        self.run_id = run_id
        self.paths = Paths(run_dir)
        self.engine_url = engine_url
        self.on_event = on_event
        self.http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        self.cgroups = MemoryCgroups(run_id)
        self.memory: MemoryControl | None = (
            CgroupMemory(self.cgroups, self.paths, self._has_cgroup, runtime=self.name)
            if self.cgroups.available() else None)
        self.nodes_network = NodeNetworkControl(lambda: self.engine, run_id, self.topology,
                                                self._container, stack_file=stack_file)
        self.network: NetworkControl | None = (
            self.nodes_network if self.topology.node_network is not None else None)
        self.capabilities = capabilities_with(self.memory, self.network)
        self._engine: docker.DockerClient | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._specs: dict[str, comp.ComponentSpec] = {}
        self._state = load_state(run_dir) or RunState(run_id, stack_file, owner_pid)

    @property
    def engine(self) -> docker.DockerClient:
        if self._engine is None:
            self._engine = connect(self.engine_url)
        return self._engine

    # -- whole stack -------------------------------------------------------------------
    def up(self) -> None:
        bring_up(self.topology, self._prepare, self.start, self.wait_ready, self.down)

    def down(self) -> None:
        remove_run_objects(self.engine, self.run_id)
        self.cgroups.remove()
        remove_other_hierarchies(self.run_id)
        self._state = RunState(self.run_id, self._state.stack_file, None, {})
        save_state(self.paths.run_dir, self._state)  # the watchdog sees it and exits
        if self._watchdog is not None:
            reap(self._watchdog, within=5)
            self._watchdog = None

    def close(self) -> None:
        self.http.close()
        if self._engine is not None:
            self._engine.close()

    def use_topology(self, topology: Topology) -> None:
        self.topology, self._specs = topology.on_node_network(), {}
        self.nodes_network.topology = self.topology

    def specs(self) -> dict[str, comp.ComponentSpec]:
        if not self._specs:
            # the webhook's OOM collector reads the nodes' cgroups where it is mounted
            root = HOST_CGROUPS / self.cgroups.root.relative_to("/") if self.memory else None
            self._specs = build_host_specs(self.topology, self.paths, cgroup_root=root)
        return self._specs

    # -- one component ------------------------------------------------------------------
    def start(self, name: str) -> None:
        spec = self._spec(name)
        if self.is_running(name):
            raise StackError(f"{name} is already running in run {self.run_id} "
                             f"(container {self._container_name(name)}): stop it first")
        self._remove(name)
        if spec.memory_cgroup and self.memory is not None:
            self.cgroups.create(name)
        container = self.engine.containers.run(ensure_base_image(self.engine),
                                               **self._create_args(spec))
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        self._record(name, ProcRecord(pid, time.time()))
        self._emit(name, Phase.START, 0.0, f"container {container.short_id}, pid {pid}")

    def wait_ready(self, name: str, within: float | None = None) -> float:
        spec = self._spec(name)
        began = time.monotonic()
        try:
            wait_ready(spec, self.http, self.topology.model.served_name,
                       lambda: self._death(name), within)
        except HarnessError as exc:
            reason = exc.reason if isinstance(exc, ComponentFailed) else str(exc)
            self._emit(name, Phase.FAILED, time.monotonic() - began, reason)
            raise ComponentFailed(name, reason, self.log_tail(name)) from exc
        elapsed = time.monotonic() - began
        after_ready(self.topology, self.paths, self.http, name)
        self._emit(name, Phase.READY, elapsed)
        return elapsed

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Deliver ``sig`` to every process of the container from outside, as a crash or
        the kernel would: the engine's restart policy sees a death it did not ask for."""
        self._require_pid(name)
        for pid in self.pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self, name: str) -> int | None:
        """SIGKILL through the engine (on purpose: not restarted); the exit status."""
        self._require_pid(name)
        unlist_on_demand(self.topology, self.paths, self.http, name, self._emit)
        container = self._container(name)
        if container is not None:
            with contextlib.suppress(*api_errors()):
                container.kill()
        return self._forget(name)

    def stop(self, name: str, grace_s: float = 10.0) -> int | None:
        """SIGTERM through the engine, SIGKILL after ``grace_s``; the exit status."""
        self._require_pid(name)
        unlist_on_demand(self.topology, self.paths, self.http, name, self._emit)
        container = self._container(name)
        if container is not None:
            with contextlib.suppress(*api_errors()):
                container.stop(timeout=max(1, round(grace_s)))
        return self._forget(name)

    def pid(self, name: str) -> int | None:
        """The container's init process on this host while it runs; the last one while
        the engine restarts it; None once stopped on purpose or never started."""
        require_known(self.topology, name)
        record = self._state.components.get(name)
        if record is None:
            return None
        state = self._container_state(name)
        live = int(state.get("Pid") or 0) if state else 0
        if live and live != record.pid:
            self._record(name, ProcRecord(live, time.time()))
        return live or record.pid

    def pids(self, name: str) -> tuple[int, ...]:
        """Every process of the container, as host pids (the engine's ``top``)."""
        require_known(self.topology, name)
        container = self._container(name)
        return host_pids(container) if container is not None else ()

    def is_running(self, name: str) -> bool:
        require_known(self.topology, name)
        state = self._container_state(name)
        return bool(state and state.get("Running") and not state.get("Restarting"))

    def healthy(self, name: str) -> bool:
        spec = self._spec(name)
        try:
            return probe_once(spec, self.http, self.topology.model.served_name).done
        except (httpx.HTTPError, OSError):
            return False

    def log_tail(self, name: str, lines: int = 20) -> str:
        require_known(self.topology, name)
        return tail_of(self.paths.log(name), lines)

    def gave_up(self, name: str) -> str | None:
        """The engine neither runs nor restarts the container (it marks a container it
        will restart ``Restarting`` in the same step that ends the old process)."""
        require_known(self.topology, name)
        return self._death(name)

    def restart_count(self, name: str) -> int:
        """How often the engine restarted the component's container."""
        container = self._container(name)
        return int(container.attrs.get("RestartCount", 0)) if container else 0

    def apply_restart_policy(self, name: str) -> str:
        """Give ``name``'s container the current topology's restart policy in place (the
        engine's live update: the component keeps running); the engine's policy now in
        effect (``unless-stopped`` or ``no``)."""
        container = self._container(name)
        if container is None:
            raise StackError(f"{name} has no container in run {self.run_id}")
        container.update(restart_policy=self.engine_restart_policy(self._spec(name)))
        return self.restart_policy_in_effect(name)

    def restart_policy_in_effect(self, name: str) -> str:
        """The restart policy the engine holds for ``name``'s container ("" if none)."""
        return restart_policy(self._container(name))

    # -- internals -----------------------------------------------------------------------
    def _spec(self, name: str) -> comp.ComponentSpec:
        require_known(self.topology, name)
        return self.specs()[name]

    def _prepare(self) -> None:
        from harness.render.run_configs import render_run_configs

        specs = self.specs()
        check_ports_free(self.topology.host, self.topology.ports())
        for d in (self.paths.config_dir, self.paths.data_dir, self.paths.log_dir,
                  self.paths.config("targets")):
            d.mkdir(parents=True, exist_ok=True)
        for spec in specs.values():
            for data in spec.data_dirs:
                self.paths.data(data).mkdir(parents=True, exist_ok=True)
        render_run_configs(self.topology, self.paths)
        (self.paths.run_dir / ENGINE_FILE).write_text(self.engine_url)
        ensure_base_image(self.engine)
        if self.network is not None:
            self.nodes_network.ensure()
        if self._state.owner_pid is not None:  # it removes the containers by label
            env = dict(os.environ, **{RUN_ID_ENV: self.run_id, COMPONENT_ENV: WATCHDOG})
            watchdog = start_watchdog(self._state.owner_pid, self.paths.run_dir, env)
            self._watchdog = watchdog
            self._record(WATCHDOG, ProcRecord(watchdog.pid, 0.0))

    def _create_args(self, spec: comp.ComponentSpec) -> dict[str, Any]:
        env = {**dict(spec.env), RUN_ID_ENV: self.run_id, COMPONENT_ENV: spec.name,
               "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
               "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONUNBUFFERED": "1",
               "VLLM_CACHE_ROOT": str(vllm_cache_dir()),
               "LLM_DRILL_LOG": str(self.paths.log(spec.name))}
        return {
            "command": [*container_init(), "/bin/sh", "-c", LOG_WRAPPER, "sh", *spec.argv],
            "name": self._container_name(spec.name), "detach": True,
            **self.network_args(spec), "working_dir": str(self.paths.run_dir),
            # the engine mounts a tmpfs noexec unless told: vLLM's compiled kernels are
            # shared objects loaded from under $HOME (/tmp here)
            "environment": env, "tmpfs": {"/tmp": "exec", "/run": ""}, "shm_size": "1g",
            "mounts": self._mounts(),
            "labels": {RUN_LABEL: self.run_id, COMPONENT_LABEL: spec.name},
            "restart_policy": self.engine_restart_policy(spec),
            **self.cgroup_args(spec), **numa_access(spec),
        }

    def network_args(self, spec: comp.ComponentSpec) -> dict[str, Any]:
        """Nodes on the run's node network at their addresses (when the stack file asks
        for one); everything else on the host's network."""
        if spec.kind is comp.Kind.NODE and self.network is not None:
            return self.nodes_network.create_args(spec.name)
        return {"network_mode": "host"}

    def cgroup_args(self, spec: comp.ComponentSpec) -> dict[str, Any]:
        """A node's container goes inside the node's memory cgroup (the cap, the OOM count
        and the helpers live on that parent, as in the process runtime); the webhook
        reads every node's cgroup through a read-only mount of the memory hierarchy."""
        from docker.types import Mount

        if self.memory is None:
            return {}
        if spec.memory_cgroup:
            return {"cgroup_parent": self.cgroups.kernel_name(spec.name)}
        if spec.kind is comp.Kind.WEBHOOK:
            base = str(self.cgroups.base.parent)
            return {"mounts": [*self._mounts(), Mount(str(HOST_CGROUPS / base.lstrip("/")), base,
                                                       type="bind", read_only=True)]}
        return {}

    def _mounts(self) -> list[Any]:
        from docker.types import Mount

        return [Mount(src, src, type="bind", read_only=ro) for src, ro in self.binds().items()]

    def binds(self) -> dict[str, bool]:
        """Host paths mounted at the same path: read-only, but for the run's home."""
        return {**host_binds(), str(self.paths.run_dir.parent.parent): False}

    def engine_restart_policy(self, spec: comp.ComponentSpec) -> dict[str, Any]:
        policy = comp.restart_policy_of(self.topology, spec.kind)
        if policy is None or not policy.restarts:
            return {"Name": "no"}
        # The stack file's on-failure is "restart after an exit nobody asked for": a node
        # SIGTERMed from outside drains and exits 0, which the engine's on-failure would
        # leave down. unless-stopped restarts any exit but a stop through the engine's
        # API, with no retry limit (the engine counts every restart, not supervisord's
        # consecutive failed starts: a limit would run out over a session of drills).
        return {"Name": "unless-stopped"}

    def _has_cgroup(self, name: str) -> bool:
        return self._spec(name).memory_cgroup

    def _container_name(self, name: str) -> str:
        return f"llm-drill-{self.run_id}-{name}"

    def _container(self, name: str) -> Container | None:
        from docker.errors import NotFound

        try:
            return self.engine.containers.get(self._container_name(name))
        except NotFound:
            return None

    def _container_state(self, name: str) -> Mapping[str, Any] | None:
        container = self._container(name)
        return container.attrs.get("State") if container is not None else None

    def _death(self, name: str) -> str | None:
        return death_of(self._container_state(name))

    def _forget(self, name: str) -> int | None:
        container = self._container(name)
        status: int | None = None
        if container is not None:
            with contextlib.suppress(*api_errors()):
                status = int(container.wait(timeout=GONE_WITHIN_S)["StatusCode"])
        self._remove(name)
        self._record(name, None)
        self._emit(name, Phase.STOPPED, 0.0, f"exit {status}")
        return status

    def _remove(self, name: str) -> None:
        container = self._container(name)
        if container is not None:
            with contextlib.suppress(*api_errors()):
                container.remove(force=True)

    def _require_pid(self, name: str) -> int:
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running in run {self.run_id}")
        return pid

    def _record(self, name: str, record: ProcRecord | None) -> None:
        self._state = self._state.with_component(name, record)
        save_state(self.paths.run_dir, self._state)

    def _emit(self, name: str, phase: Phase, elapsed: float, detail: str = "") -> None:
        self.on_event(Event(name, phase, elapsed, detail))


def host_binds() -> dict[str, bool]:
    """What every component's container mounts from this host at the same path (True:
    read-only): the system directories, the project, the venv and the Python it was made
    from, the model cache, and vLLM's compile cache (read-write)."""
    project = Path(comp.__file__).resolve().parents[2]
    from harness.stack.model import default_cache_dir

    binds = {d: True for d in HOST_DIRS if Path(d).is_dir() and not Path(d).is_symlink()}
    # the venv and the Python it was made from (pyenv, a /opt build: not under /usr)
    binds |= {str(project): True, sys.prefix: True, sys.base_prefix: True,
              str(default_cache_dir()): True}
    # vLLM's compiled kernels, kept across starts as the process runtime's nodes keep
    # them (a user's container would mount a volume there): without it every restart
    # the engine does compiles again (37 s of a node's 70 s start here)
    binds[str(vllm_cache_dir())] = False
    return binds


def container_init() -> tuple[str, ...]:
    """The engine's init (tini, shipped with the engine as ``docker-init``) from the
    host's ``/usr`` as the container's PID 1: it forwards signals to the component and
    reaps the processes the component orphans, as a container's PID 1 must (vLLM's API
    server as PID 1 left its workers running through its shutdown's grace period).
    The engine's own ``init`` option cannot be used: it mounts the binary at
    ``/sbin/docker-init``, inside the read-only ``/usr`` here. Nothing where neither
    exists."""
    for path in INIT_BINARIES:
        if Path(path).is_file():
            return (path, "--")
    return ()


def numa_access(spec: comp.ComponentSpec) -> dict[str, Any]:
    """What vLLM's CPU backend needs of a container to place its memory and bind its
    threads (``get_mempolicy``, ``set_mempolicy``, ``migrate_pages``): the engine's default
    seccomp profile refuses them without ``CAP_SYS_NICE``, as vLLM's CPU images document
    (``--cap-add SYS_NICE --security-opt seccomp=unconfined``). Nodes only."""
    if spec.kind is not comp.Kind.NODE:
        return {}
    return {"cap_add": ["SYS_NICE"], "security_opt": ["seccomp=unconfined"]}


def vllm_cache_dir() -> Path:
    """vLLM's cache directory on the host (``VLLM_CACHE_ROOT``, else ``~/.cache/vllm``),
    created if missing so that it can be mounted."""
    path = Path(os.environ.get("VLLM_CACHE_ROOT") or Path.home() / ".cache" / "vllm")
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_run_objects(engine: docker.DockerClient, run_id: str) -> int:
    """Remove every container labelled with ``run_id`` (running or not), then the run's
    networks; how many containers."""
    found = engine.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})
    for container in found:
        with contextlib.suppress(*api_errors()):
            container.remove(force=True)
    Wait(within=GONE_WITHIN_S, interval=0.2).until_true(
        f"the containers of run {run_id} to be removed",
        lambda: not engine.containers.list(all=True,
                                           filters={"label": f"{RUN_LABEL}={run_id}"}))
    remove_run_networks(engine, run_id)
    return len(found)
