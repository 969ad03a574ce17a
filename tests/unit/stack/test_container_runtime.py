"""The container runtime's decisions that need no engine: which restart policy each kind
gets, what is mounted how, and the start order both runtimes share."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from harness.stack import components as comp
from harness.stack.container_runtime import ContainerRuntime
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


def test_only_the_home_is_writable(tmp_path: Path) -> None:
    binds = runtime(tmp_path).binds()
    assert binds.pop(str(tmp_path / "home")) is False
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
