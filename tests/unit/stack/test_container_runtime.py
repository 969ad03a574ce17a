"""The container runtime's decisions that need no engine: which restart policy each kind
gets, what is mounted how, and the start order both runtimes share."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.stack import components as comp
from harness.stack import container_runtime
from harness.stack.container_runtime import ContainerRuntime, numa_access
from harness.stack.lifecycle import start_phases
from harness.topology import RestartPolicy, Topology, load_topology


def runtime(tmp_path: Path, topology: Topology | None = None) -> ContainerRuntime:
    run_dir = tmp_path / "home" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    return ContainerRuntime(topology or load_topology(), run_dir, "r1", stack_file="s.yaml",
                            engine_url="unix:///nowhere.sock")


def spec(kind: comp.Kind, name: str = "x") -> comp.ComponentSpec:
    return comp.ComponentSpec(name=name, kind=kind, argv=("true",), ports=(),
                              ready_check=comp.ReadyCheck.HTTP_OK, ready_url="http://x")


def test_on_failure_is_restart_unless_stopped_and_never_is_no(tmp_path: Path) -> None:
    """A node SIGTERMed from outside drains and exits 0: the engine's own on-failure
    would leave it down, unless-stopped brings it back (and an API stop stays down)."""
    shipped = runtime(tmp_path)
    assert shipped.engine_restart_policy(spec(comp.Kind.NODE)) == {"Name": "unless-stopped"}
    assert shipped.engine_restart_policy(spec(comp.Kind.FRONT_DOOR)) == {"Name": "unless-stopped"}
    topology = load_topology()
    never = replace(topology, restart=replace(topology.restart,
                                              gateways=RestartPolicy(policy="never")))
    off = runtime(tmp_path / "other", never)
    assert off.engine_restart_policy(spec(comp.Kind.GATEWAY)) == {"Name": "no"}
    assert off.engine_restart_policy(spec(comp.Kind.NODE)) == {"Name": "unless-stopped"}


def test_components_the_stack_does_not_restart_get_no_policy(tmp_path: Path) -> None:
    for kind in (comp.Kind.PROMETHEUS, comp.Kind.WEBHOOK, comp.Kind.FAULT_PROXY):
        assert runtime(tmp_path / kind.value).engine_restart_policy(spec(kind)) == {"Name": "no"}


def test_only_the_home_and_vllms_cache_are_writable(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "vllm-cache"))
    binds = runtime(tmp_path).binds()
    assert binds.pop(str(tmp_path / "home")) is False
    assert binds.pop(str(tmp_path / "vllm-cache")) is False, "compiled kernels kept"
    assert (tmp_path / "vllm-cache").is_dir(), "made so that it can be mounted"
    assert all(binds.values()), "everything else read-only"
    assert {sys.prefix, sys.base_prefix, "/usr", "/etc"} <= set(binds)
    assert not any(Path(path).is_symlink() for path in binds), "the image holds the links"


def test_both_runtimes_start_in_the_same_phases() -> None:
    t = load_topology()
    phases = start_phases(t)
    assert phases[0][:4] == [t.fault_proxy.name, t.webhook.name, t.prometheus.name,
                             t.alertmanager.name]
    assert phases[1:3] == [[g.name for g in t.gateways], [t.front_door.name]]
    canary = t.canary.name if t.canary else None
    assert canary not in [name for phase in phases for name in phase], "on demand only"


def test_only_nodes_may_place_memory_and_bind_threads() -> None:
    """vLLM's CPU backend calls set_mempolicy and friends; the engine's default seccomp
    profile refuses them without CAP_SYS_NICE (the node logs "Operation not permitted")."""
    assert numa_access(spec(comp.Kind.NODE)) == {"cap_add": ["SYS_NICE"],
                                                 "security_opt": ["seccomp=unconfined"]}
    for kind in (comp.Kind.GATEWAY, comp.Kind.FRONT_DOOR, comp.Kind.PROMETHEUS):
        assert numa_access(spec(kind)) == {}


def test_the_engines_init_is_pid_1_where_the_host_has_it(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tini = tmp_path / "tini"
    monkeypatch.setattr(container_runtime, "INIT_BINARIES", (str(tmp_path / "none"), str(tini)))
    assert container_runtime.container_init() == ()
    tini.write_text("")
    assert container_runtime.container_init() == (str(tini), "--")
