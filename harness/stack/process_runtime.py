"""The embedded default: every component a real local process under one run directory."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.errors import (
    ComponentFailed,
    HarnessError,
    NotReady,
    StackError,
)
from harness.render.run_configs import (
    render_run_configs,
)
from harness.render.supervisor import Program, render_supervisord
from harness.runs import Paths, ProcRecord, RunState, load_state, save_state, scratch_dir
from harness.stack import components as comp
from harness.stack.cgroups import MemoryCgroups
from harness.stack.components import require_known
from harness.stack.lifecycle import (
    after_ready,
    bring_up,
    build_host_specs,
    unlist_on_demand,
)
from harness.stack.log_files import tail_of
from harness.stack.preflight import check_ports_free, find_binary
from harness.stack.process_memory import CgroupMemory
from harness.stack.processes import (
    COMPONENT_ENV,
    RUN_ID_ENV,
    Launch,
    group_members,
    hand_to_reaper,
    is_zombie,
    kill_all,
    live_processes,
    reap,
    signal_group,
    signal_pids,
    spawn,
    tagged_processes,
    terminate,
)
from harness.stack.readiness import probe_once, wait_ready
from harness.stack.reaper import WATCHDOG, start_watchdog, teardown
from harness.stack.runtime import (
    Event,
    EventSink,
    MemoryControl,
    NetworkControl,
    Phase,
    capabilities_with,
    ignore_events,
)
from harness.stack.supervisor import (
    STOPPED_STATES,
    SUPERVISOR,
    ProgramInfo,
    SupervisorClient,
    gave_up,
    main_pidfile,
    supervisord_config,
    supervisord_files,
)
from harness.topology import RestartPolicy, Topology
from harness.waits import Probe, Wait

SUPERVISED = comp.RESTARTED
SUPERVISOR_UP_WITHIN_S = 20.0
MAIN_PID_WITHIN_S = 15.0  # the wrapper (a Python process) starts the command


class ProcessRuntime:
    """Starts, watches and stops the stack's components as process groups; memory
    control where this host lets it create memory cgroups (root, cgroup v1).
    The contract it keeps is :class:`~harness.stack.runtime.Runtime`'s."""

    name = "process"

    def __init__(self, topology: Topology, run_dir: Path, run_id: str, *, stack_file: str,
                 on_event: EventSink = ignore_events, owner_pid: int | None = None,
                 http: httpx.Client | None = None) -> None:
        self.topology = topology
        self.run_id = run_id
        self.paths = Paths(run_dir)
        self.cgroups = MemoryCgroups(run_id)
        self.supervisor = SupervisorClient(supervisord_files(self.paths, self.run_id).socket)
        self.on_event = on_event
        self.http = http or httpx.Client(timeout=httpx.Timeout(10.0, connect=2.0))
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._specs: dict[str, comp.ComponentSpec] = {}
        self._state = load_state(run_dir) or RunState(run_id, stack_file, owner_pid)
        self.memory: MemoryControl | None = (
            CgroupMemory(self.cgroups, self.paths, self._has_cgroup)
            if self._use_cgroups else None)
        self.network: NetworkControl | None = None  # one loopback for every component
        self.capabilities = capabilities_with(self.memory)

    # -- whole stack -------------------------------------------------------------------
    def up(self) -> None:
        """Start every component, ready for traffic; on any failure tear down and raise."""
        bring_up(self.topology, self._prepare, self.start, self.wait_ready, self.down)

    def down(self) -> None:
        teardown(self.paths.run_dir)
        for name in list(self._procs):
            self._reap_popen(name)
        self._state = load_state(self.paths.run_dir) or self._state

    def close(self) -> None:
        """Release connections and let go of children that keep running (attached use)."""
        self.http.close()
        for proc in self._procs.values():
            if proc.poll() is None:
                # Detach: the process outlives this handle on purpose (its group is in
                # the state file for `down`); Popen would otherwise warn when collected.
                proc.returncode = 0
        self._procs.clear()

    def use_topology(self, topology: Topology) -> None:
        """Components started from now on run from ``topology`` (a variant of the stack);
        the ones already running keep theirs until restarted."""
        self.topology, self._specs = topology, {}

    def specs(self) -> dict[str, comp.ComponentSpec]:
        if not self._specs:
            self._specs = self._build_specs()
        return self._specs

    # -- one component ------------------------------------------------------------------
    def start(self, name: str) -> None:
        spec = self._spec(name)
        if self.is_running(name):
            raise StackError(f"{name} is already running in run {self.run_id} "
                             f"(pid {self.pid(name)}): stop it before starting it")
        if self._supervised(name):
            self._start_supervised(name, spec)
            return
        cgroup = self.cgroups.create(name) if spec.memory_cgroup and self._use_cgroups else None
        proc = spawn(Launch(spec.argv, self._env(name, spec), self.paths.run_dir,
                            self.paths.log(name), cgroup))
        if name in self._procs:  # a previous run of it that nobody stopped through us
            hand_to_reaper(self._procs[name])
        self._procs[name] = proc
        self._record(name, ProcRecord(proc.pid, time.time(), str(cgroup or "")))
        self._emit(name, Phase.START, 0.0, f"pid {proc.pid}")

    def wait_ready(self, name: str, within: float | None = None) -> float:
        spec = self._spec(name)
        began = time.monotonic()
        try:
            wait_ready(spec, self.http, self.topology.model.served_name,
                       lambda: self._death(name), within)
        except ComponentFailed as exc:
            self._emit(name, Phase.FAILED, time.monotonic() - began, exc.reason)
            raise ComponentFailed(name, exc.reason, self.log_tail(name)) from exc
        except HarnessError as exc:
            self._emit(name, Phase.FAILED, time.monotonic() - began, str(exc))
            raise ComponentFailed(name, str(exc), self.log_tail(name)) from exc
        elapsed = time.monotonic() - began
        after_ready(self.topology, self.paths, self.http, name)
        self._emit(name, Phase.READY, elapsed)
        return elapsed

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Signal the whole group, and any process of the component that left it."""
        pid = self._require_pid(name)
        signal_group(self._group(name) or pid, sig)
        signal_pids(tagged_processes(self.run_id, name), sig)

    def kill(self, name: str) -> int | None:
        """SIGKILL the whole group; return the leader's exit status if we own it."""
        pid = self._require_pid(name)
        self._unlist(name)
        if self._supervised(name):
            self._kill_supervised(name, pid)
        else:
            kill_all(pid, self.run_id, name)
        return self._forget(name)

    def stop(self, name: str, grace_s: float = 10.0) -> int | None:
        """SIGTERM, graceful drain up to ``grace_s``, then SIGKILL."""
        pid = self._require_pid(name)
        self._unlist(name)
        if self._supervised(name):
            self._stop_supervised(name, pid, grace_s)
        else:
            terminate(pid, self.run_id, name, grace_s)
        return self._forget(name)

    def pid(self, name: str) -> int | None:
        """The main process; for a supervised component, its current incarnation's (the
        command its wrapper runs), None while supervisord has none running."""
        require_known(self.topology, name)
        record = self._state.components.get(name)
        if record is None or not self._supervised(name):
            return record.pid if record else None
        info = self._program_info(name)
        return None if info is None or not info.running else self._main_pid(name, info.pid)

    def pids(self, name: str) -> tuple[int, ...]:
        pid = self.pid(name)
        if pid is None:
            return ()
        return tuple(live_processes(self._group(name) or pid, self.run_id, name))

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None and self._death(name) is None

    def healthy(self, name: str) -> bool:
        """Running and passing one readiness probe now (a real completion for nodes)."""
        if not self.is_running(name):
            return False
        try:
            return probe_once(self._spec(name), self.http,
                              self.topology.model.served_name).done
        except httpx.HTTPError:
            return False

    def exit_status(self, name: str) -> int | None:
        proc = self._procs.get(name)
        return proc.poll() if proc else None

    def log_tail(self, name: str, lines: int = 20) -> str:
        require_known(self.topology, name)
        return tail_of(self.paths.log(name), lines)

    def gave_up(self, name: str) -> str | None:
        if not self._supervised(name):
            return None if self.is_running(name) else f"nothing supervises {name}: it stays down"
        return gave_up(self._program_info(name),
                       restarts=self.restart_policy(name).policy != "never")

    # -- internals -----------------------------------------------------------------------
    def _spec(self, name: str) -> comp.ComponentSpec:
        require_known(self.topology, name)
        return self.specs()[name]

    def _has_cgroup(self, name: str) -> bool:
        return self._spec(name).memory_cgroup

    @property
    def _use_cgroups(self) -> bool:
        return self.cgroups.available()

    def _prepare(self) -> None:
        specs = self.specs()
        check_ports_free(self.topology.host, self.topology.ports())
        for d in (self.paths.config_dir, self.paths.data_dir, self.paths.log_dir,
                  scratch_dir(self.run_id), self.paths.config("targets")):
            d.mkdir(parents=True, exist_ok=True)
        for spec in specs.values():
            for data in spec.data_dirs:
                self.paths.data(data).mkdir(parents=True, exist_ok=True)
        render_run_configs(self.topology, self.paths)
        self._start_watchdog()
        self._write_supervisord_config()
        self._start_supervisord()

    def _build_specs(self) -> dict[str, comp.ComponentSpec]:
        cgroup_root = self.cgroups.root if self._use_cgroups else None
        return build_host_specs(self.topology, self.paths, cgroup_root)

    # -- the supervisor -------------------------------------------------------------------
    def _supervised(self, name: str) -> bool:
        return self._spec(name).kind in SUPERVISED

    def restart_policy(self, name: str) -> RestartPolicy:
        """The stack file's restart policy for ``name`` (a supervised component)."""
        policy = comp.restart_policy_of(self.topology, self._spec(name).kind)
        if policy is not None:
            return policy
        raise StackError(f"{name} is not supervised: only nodes, gateways and the front "
                         "door are restarted by the stack")

    def _program(self, priority: int, spec: comp.ComponentSpec) -> Program:
        wrapper: tuple[str, ...] = (sys.executable, "-m", "harness.stack.groupwrap",
                                    "--pidfile", str(main_pidfile(self.paths, spec.name)))
        policy = self.restart_policy(spec.name)
        if spec.memory_cgroup and self._use_cgroups:
            wrapper += ("--cgroup", str(self.cgroups.path(spec.name)))
        if policy.backoff_s > 0:
            wrapper += ("--backoff-s", f"{policy.backoff_s:g}")
        env = {**dict(spec.env), RUN_ID_ENV: self.run_id, COMPONENT_ENV: spec.name,
               "TMPDIR": str(scratch_dir(self.run_id)), "PYTHONUNBUFFERED": "1"}
        return Program(spec.name, (*wrapper, "--", *spec.argv), tuple(sorted(env.items())),
                       self.paths.log(spec.name), self.paths.run_dir, policy, priority,
                       stop_leader_only=spec.kind is comp.Kind.NODE)

    def _write_supervisord_config(self) -> None:
        programs = [self._program(i + 1, spec) for i, spec in enumerate(self.specs().values())
                    if spec.kind in SUPERVISED]
        main_pidfile(self.paths, "x").parent.mkdir(parents=True, exist_ok=True)
        supervisord_config(self.paths).write_text(
            render_supervisord(supervisord_files(self.paths, self.run_id), programs))

    def _start_supervisord(self) -> None:
        """supervisord is a component of the run: started first, torn down last."""
        argv = (find_binary(["supervisord"], comp.STACK_HINT), "-n", "-c",
                str(supervisord_config(self.paths)))
        proc = spawn(Launch(argv, self._env(SUPERVISOR, None), self.paths.run_dir,
                            self.paths.log(SUPERVISOR)))
        self._procs[SUPERVISOR] = proc
        self._record(SUPERVISOR, ProcRecord(proc.pid, time.time()))

        def up() -> Probe[None]:
            code = proc.poll()
            if code is not None:
                raise ComponentFailed(SUPERVISOR, f"exited with status {code}",
                                      self.log_tail_of(SUPERVISOR))
            return Probe(done=self.supervisor.reachable())

        Wait(within=SUPERVISOR_UP_WITHIN_S, interval=0.1).until(
            f"supervisord to answer on {self.supervisor.socket_path}", up)

    def _start_supervised(self, name: str, spec: comp.ComponentSpec) -> None:
        cgroup = self.cgroups.create(name) if spec.memory_cgroup and self._use_cgroups else None
        self._write_supervisord_config()  # the topology may have changed (a variant)
        self.supervisor.reload(name)
        main_pidfile(self.paths, name).unlink(missing_ok=True)  # a first start: no backoff
        self.supervisor.start(name)
        pid = Wait(within=MAIN_PID_WITHIN_S, interval=0.05).until(
            f"{name}'s wrapper to start its command", lambda: self._main_pid_probe(name))
        assert pid is not None  # a done probe carries the pid
        self._record(name, ProcRecord(pid, time.time(), str(cgroup or "")))
        self._emit(name, Phase.START, 0.0, f"pid {pid} (supervised)")

    def _main_pid_probe(self, name: str) -> Probe[int]:
        info = self._program_info(name)
        if info is not None and info.state in STOPPED_STATES:
            raise ComponentFailed(name, f"supervisord reports {info.state} "
                                        f"(exit {info.exit_status})", self.log_tail(name))
        pid = None if info is None or not info.running else self._main_pid(name, info.pid)
        return Probe(done=pid is not None, value=pid,
                     seen=f"supervisord: {info.state if info else 'unreachable'}")

    def _program_info(self, name: str) -> ProgramInfo | None:
        try:
            return self.supervisor.info(name)
        except StackError:
            return None

    def _main_pid(self, name: str, wrapper: int) -> int | None:
        """The pid the wrapper wrote, if it is alive in the wrapper's group."""
        try:
            pid = int(main_pidfile(self.paths, name).read_text())
            alive = os.getpgid(pid) == wrapper and not is_zombie(pid)
        except (OSError, ValueError):
            return None
        return pid if alive else None

    def _group(self, name: str) -> int | None:
        """The process group of a supervised component (its wrapper's pid)."""
        if not self._supervised(name):
            return None
        info = self._program_info(name)
        return info.pid if info is not None and info.pid > 0 else None

    def _kill_supervised(self, name: str, pid: int) -> None:
        """Freeze the group, tell supervisord it is stopping (so it is not restarted),
        then SIGKILL everything of it."""
        group = self._group(name) or pid
        signal_group(group, signal.SIGSTOP)
        self.supervisor.stop(name)
        kill_all(group, self.run_id, name)
        self._await_stopped(name)

    def _stop_supervised(self, name: str, pid: int, grace_s: float) -> None:
        """supervisord's stop (SIGTERM to the group, no restart); SIGKILL past ``grace_s``."""
        group = self._group(name) or pid
        self.supervisor.stop(name)
        with contextlib.suppress(NotReady):
            Wait(within=grace_s, interval=0.1).until_true(
                f"{name} to exit after SIGTERM",
                lambda: not live_processes(group, self.run_id, name))
        kill_all(group, self.run_id, name)
        self._await_stopped(name)

    def _await_stopped(self, name: str) -> None:
        Wait(within=MAIN_PID_WITHIN_S, interval=0.05).until(
            f"supervisord to report {name} stopped", lambda: Probe(
                done=(info := self._program_info(name)) is None
                or info.state in STOPPED_STATES, seen=str(self._program_info(name))))

    def log_tail_of(self, label: str, lines: int = 20) -> str:
        return tail_of(self.paths.log(label), lines)

    def _start_watchdog(self) -> None:
        if self._state.owner_pid is None:
            return
        proc = start_watchdog(self._state.owner_pid, self.paths.run_dir,
                              self._env(WATCHDOG, None))
        self._procs[WATCHDOG] = proc
        self._record(WATCHDOG, ProcRecord(proc.pid, 0.0))

    def _env(self, name: str, spec: comp.ComponentSpec | None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(spec.env if spec else ())
        env.update({RUN_ID_ENV: self.run_id, COMPONENT_ENV: name,
                    "TMPDIR": str(scratch_dir(self.run_id)), "PYTHONUNBUFFERED": "1"})
        return env

    def _record(self, name: str, record: ProcRecord | None) -> None:
        self._state = self._state.with_component(name, record)
        save_state(self.paths.run_dir, self._state)

    def _require_pid(self, name: str) -> int:
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running in run {self.run_id}")
        return pid

    def _unlist(self, name: str) -> None:
        unlist_on_demand(self.topology, self.paths, self.http, name, self._emit)

    def _forget(self, name: str) -> int | None:
        status = self._reap_popen(name)
        self._record(name, None)
        self._emit(name, Phase.STOPPED, 0.0, f"exit {status}")
        return status

    def _reap_popen(self, name: str) -> int | None:
        proc = self._procs.pop(name, None)
        return None if proc is None else reap(proc, within=5)

    def _death(self, name: str) -> str | None:
        if self._supervised(name):
            info = self._program_info(name)
            if info is None:
                return "supervisord is unreachable"
            return (f"supervisord reports {info.state} (exit {info.exit_status})"
                    if info.state in STOPPED_STATES else None)
        proc = self._procs.get(name)
        if proc is None:  # started by another process (`llm-drill up`): look at its group
            pid = self.pid(name)
            if pid is None:
                return "not started"
            return None if group_members(pid) else f"process group {pid} is gone"
        code = proc.poll()
        return None if code is None else f"exited with status {code} during start-up"

    def _emit(self, name: str, phase: Phase, elapsed: float, detail: str = "") -> None:
        self.on_event(Event(name, phase, elapsed, detail))

