"""The external runtime keeps the Runtime contract over HTTP (httpx.MockTransport)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from harness.errors import ComponentFailed, UnknownComponent, Unsupported
from harness.stack.components import ReadyCheck, component_names
from harness.stack.external import NO_LOGS, ExternalRuntime
from harness.stack.runtime import Capability, Runtime
from harness.stack.stack import Stack
from harness.topology import Topology, load_topology

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology()


def external(topology: Topology, handler: Handler) -> ExternalRuntime:
    return ExternalRuntime(topology, http=httpx.Client(transport=httpx.MockTransport(handler)))


def refuse_connections(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def answer(status: int) -> Handler:
    return lambda request: httpx.Response(status, text="x")


def test_it_declares_no_capabilities_and_no_memory(topology: Topology) -> None:
    runtime: Runtime = external(topology, answer(200))
    assert runtime.capabilities == frozenset()
    assert runtime.memory is None
    assert runtime.name == "external"


def test_specs_are_the_topology_components_without_touching_the_host(topology: Topology) -> None:
    specs = external(topology, refuse_connections).specs()
    assert tuple(specs) == component_names(topology)
    assert specs["node1"].ready_check is ReadyCheck.COMPLETION
    assert specs["node1"].ready_url == topology.url(topology.node("node1").port)
    assert specs["node1"].memory_cgroup


@pytest.mark.parametrize("act", [
    lambda r: r.start("webhook"), lambda r: r.stop("webhook"), lambda r: r.kill("webhook"),
    lambda r: r.signal("webhook", signal.SIGSTOP)])
def test_process_control_is_refused_naming_capability_runtime_and_action(
        topology: Topology, act: Callable[[ExternalRuntime], object]) -> None:
    with pytest.raises(Unsupported, match=r"webhook needs process control.*external") as caught:
        act(external(topology, answer(200)))
    assert (caught.value.capability, caught.value.runtime) == ("process control", "external")


@pytest.mark.parametrize("act", [
    lambda r: r.start("nope"), lambda r: r.kill("nope"), lambda r: r.pid("nope"),
    lambda r: r.pids("nope"), lambda r: r.is_running("nope"), lambda r: r.healthy("nope"),
    lambda r: r.log_tail("nope"), lambda r: r.wait_ready("nope", 1)])
def test_an_unknown_name_is_unknown_before_anything_else(
        topology: Topology, act: Callable[[ExternalRuntime], object]) -> None:
    with pytest.raises(UnknownComponent, match=r"'nope'.*webhook"):
        act(external(topology, answer(200)))


def test_running_means_answering_http_at_all(topology: Topology) -> None:
    assert external(topology, answer(404)).is_running("node1")
    assert not external(topology, refuse_connections).is_running("node1")


def test_healthy_means_passing_the_readiness_probe_now(topology: Topology) -> None:
    seen: list[str] = []

    def completion_ok(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={})

    assert external(topology, completion_ok).healthy("node1")
    assert seen == ["POST /v1/completions"], "a node is healthy when a completion succeeds"
    assert not external(topology, answer(503)).healthy("node1")
    assert not external(topology, refuse_connections).healthy("node1")


def test_processes_are_not_visible(topology: Topology) -> None:
    runtime = external(topology, answer(200))
    assert runtime.pid("node1") is None
    assert runtime.pids("node1") == ()
    assert runtime.log_tail("node1") == NO_LOGS


def test_wait_ready_returns_once_ready_and_fails_naming_the_component(
        topology: Topology) -> None:
    assert external(topology, answer(200)).wait_ready("webhook", within=2) >= 0
    with pytest.raises(ComponentFailed, match="webhook"):
        external(topology, answer(503)).wait_ready("webhook", within=0.3)


def test_the_stack_refuses_memory_control_naming_the_runtime(topology: Topology,
                                                            tmp_path: Path) -> None:
    stack = Stack(topology, external(topology, answer(200)), tmp_path, "external")
    with pytest.raises(Unsupported, match=r"node1's memory needs memory control.*external"):
        stack.memory("node1")
    with pytest.raises(UnknownComponent):
        stack.memory("nope")
    assert Capability.MEMORY_CONTROL not in stack.capabilities


def test_up_down_and_close_leave_an_attached_stack_alone(topology: Topology) -> None:
    calls: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200)

    runtime = external(topology, record)
    runtime.up()
    runtime.down()
    runtime.close()
    assert calls == []
