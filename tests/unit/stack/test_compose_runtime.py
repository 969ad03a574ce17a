"""Attaching to a compose project: which container plays which component (the
``llm-drill.component`` label first, then the service name), what a project lacks, and
which pids may be signalled from this host. No engine needed."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx

from harness.stack.components import COMPONENT_LABEL
from harness.stack.compose_runtime import (
    SERVICE_LABEL,
    ComposeRuntime,
    Listed,
    available_faults,
    map_roles,
    owns_pid,
    required_components,
)
from harness.stack.runtime import Capability
from harness.topology import load_topology


def service(container: str, name: str, **labels: str) -> Listed:
    return Listed(container, {SERVICE_LABEL: name, **labels})


def full_project() -> list[Listed]:
    t = load_topology()
    return [service(f"shop-{name}-1", name) for name in required_components(t)]


def test_services_named_like_the_components_fill_every_role() -> None:
    roles = map_roles(load_topology(), full_project())
    assert roles.missing == ()
    assert roles.containers["node1"] == "shop-node1-1"
    assert roles.unmapped == ()


def test_the_component_label_wins_over_the_service_name() -> None:
    """A team's services have their own names: the label says which component each is."""
    listed = [*full_project()[1:], service("shop-vllm-a-1", "vllm-a", **{COMPONENT_LABEL: "node1"}),
              service("shop-cache-1", "redis")]
    roles = map_roles(load_topology(), listed)
    assert roles.containers["node1"] == "shop-vllm-a-1"
    assert roles.missing == ()
    assert roles.unmapped == ("shop-cache-1",)


def test_a_missing_role_is_named_with_what_was_found() -> None:
    t = load_topology()
    listed = [item for item in full_project() if item.labels[SERVICE_LABEL] != t.prometheus.name]
    roles = map_roles(t, [*listed, service("shop-grafana-1", "grafana")])
    assert roles.missing == (t.prometheus.name,)
    text = roles.describe("shop")
    assert f"missing {t.prometheus.name}" in text
    assert "node1=shop-node1-1" in text and "not a component: shop-grafana-1" in text


def test_an_empty_project_misses_the_serving_and_alerting_paths() -> None:
    t = load_topology()
    roles = map_roles(t, [])
    assert set(roles.missing) == {*(n.name for n in t.nodes), *(g.name for g in t.gateways),
                                  t.front_door.name, t.prometheus.name, t.alertmanager.name}


def test_only_a_pid_whose_cgroup_names_the_container_may_be_signalled() -> None:
    mine = Path("/proc/self/cgroup").read_text().splitlines()[0].rsplit("/", 1)[-1]
    assert owns_pid("0123456789abcdef" * 4, os.getpid()) is False
    assert owns_pid("no-such-container", 2**22 + 1) is False, "no such pid"
    if mine:  # a process in a named cgroup: its own path names it
        assert owns_pid(mine, os.getpid()) is True


def attached(*, process: bool, memory: bool) -> ComposeRuntime:
    """What ``available_faults`` reads of an attached project's runtime."""
    return cast(ComposeRuntime, SimpleNamespace(
        topology=load_topology(), memory_possible=memory,
        capabilities=frozenset({Capability.PROCESS_CONTROL} if process else set())))


def no_fault_proxy() -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(404)))


def test_memory_faults_are_offered_only_where_the_nodes_cgroups_can_be_written() -> None:
    with no_fault_proxy() as http:
        offered = available_faults(attached(process=True, memory=True), http)
        refused = available_faults(attached(process=False, memory=False), http)
    assert offered["memory caps and OOM kills"].startswith("yes: on the nodes")
    assert refused["memory caps and OOM kills"].startswith("no: needs process faults and root")
    assert refused["process faults (kill, SIGTERM, SIGSTOP)"].startswith("no:")
    assert offered["network toxics"].startswith("no: no fault proxy answers")
