"""The container runtime on a real Docker Engine (the project's own daemon, started here
on a socket of the test's own and stopped after): light components only (the webhook
receiver, the fault proxy, HAProxy as the front door), on ports 10000 above the stack
file's so the session's stack keeps running beside them.

What is checked is the engine's behaviour through the Runtime contract: a container
killed from outside is restarted by the engine's restart policy (new pid, RestartCount
up), one stopped on purpose through the API is not, ``never`` means the engine's ``no``
(at creation or applied live to a running container),
the memory cgroup layout the memory capability needs, and nothing left afterwards: no
container with the run's label, no cgroup, no process, even when the owner of the run is
SIGKILLed (the watchdog removes the containers by label). Needs ``dockerd``
(Debian's docker.io, installed by scripts/bootstrap.sh)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from harness.errors import ConfigError, Unreachable
from harness.render.run_configs import render_run_configs
from harness.stack.components import RUN_LABEL
from harness.stack.container_runtime import ContainerRuntime
from harness.stack.engine import (
    EngineFiles,
    connect,
    ensure_base_image,
)
from harness.stack.node_network import interface_on
from harness.stack.stack import Stack, create_stack
from harness.topology import RestartPolicy
from harness.waits import Probe, Wait
from tests.integration.stackfiles import SHIFTED_SUBNET, shifted_stack_text

pytestmark = pytest.mark.skipif(shutil.which("dockerd") is None,
                                reason="no dockerd (apt-get install -y docker.io iptables)")

def shifted_stack_file(folder: Path, restart_front_door: str = "on-failure",
                       subnet: str = SHIFTED_SUBNET) -> Path:
    """The shifted default stack, its front door's restart policy as asked."""
    text = re.sub(r"(?m)^(  front_door: \{policy: )on-failure", rf"\g<1>{restart_front_door}",
                  shifted_stack_text(subnet))
    path = folder / f"stack-{restart_front_door}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def stack(engine: EngineFiles, tmp_path: Path) -> Iterator[Stack]:
    handle = _stack(engine, tmp_path, "on-failure")
    try:
        yield handle
    finally:
        handle.down()


def _stack(engine: EngineFiles, folder: Path, policy: str,
           subnet: str = SHIFTED_SUBNET) -> Stack:
    os.environ["DOCKER_HOST"] = engine.url
    try:
        handle = create_stack(shifted_stack_file(folder, policy, subnet),
                              home=folder / "home", runtime="container")
    finally:
        del os.environ["DOCKER_HOST"]
    _prepare(handle)
    return handle


def _prepare(stack: Stack) -> None:
    """What ``up`` does before it starts anything: configs, the base image."""
    runtime = stack.runtime
    assert isinstance(runtime, ContainerRuntime)
    for folder in (runtime.paths.config_dir, runtime.paths.log_dir,
                   runtime.paths.config("targets")):
        folder.mkdir(parents=True, exist_ok=True)
    render_run_configs(stack.topology, runtime.paths)
    ensure_base_image(runtime.engine)


def _labelled(engine: EngineFiles, run_id: str) -> list[str]:
    client = connect(engine.url)
    try:
        return [c.name for c in client.containers.list(
            all=True, filters={"label": f"{RUN_LABEL}={run_id}"})]
    finally:
        client.close()


def test_components_run_in_containers_and_leave_nothing(stack: Stack,
                                                        engine: EngineFiles) -> None:
    webhook, proxy = stack.topology.webhook.name, stack.topology.fault_proxy.name
    for name in (webhook, proxy):
        stack.start(name)
    for name in (webhook, proxy):
        stack.wait_ready(name, within=30)
        assert stack.is_running(name) and stack.healthy(name)
        pid = stack.pid(name)
        assert pid is not None and pid in stack.pids(name)
    assert httpx.get(f"{stack.fault_proxy_url}/proxies").status_code == 200
    assert len(_labelled(engine, stack.run_id)) == 2
    assert stack.kill(webhook) == 137 and stack.pid(webhook) is None
    assert stack.stop(proxy, grace_s=5) is not None
    assert not stack.is_running(proxy)
    left = stack.down()
    assert left.clean, left
    assert _labelled(engine, stack.run_id) == []


def test_the_engine_restarts_a_front_door_killed_from_outside(stack: Stack) -> None:
    """A death nobody asked for (SIGKILL from outside) is the engine's to recover; a kill
    through the engine's API is on purpose and stays dead."""
    name = stack.topology.front_door.name
    stack.start(name)
    Wait(within=15, interval=0.1).until_true(f"{name} running", lambda: stack.is_running(name))
    before = stack.pid(name)
    stack.signal(name, signal.SIGKILL)
    runtime = stack.runtime
    assert isinstance(runtime, ContainerRuntime)
    Wait(within=20, interval=0.1).until_true(
        f"the engine to restart {name}",
        lambda: runtime.restart_count(name) >= 1 and stack.is_running(name))
    assert stack.pid(name) != before
    assert stack.kill(name) == 137
    assert runtime.restart_count(name) == 0  # the container is gone: nothing restarts it


def test_restart_policy_never_leaves_it_dead(engine: EngineFiles, tmp_path: Path) -> None:
    handle = _stack(engine, tmp_path, "never")
    try:
        name = handle.topology.front_door.name
        handle.start(name)
        Wait(within=15, interval=0.1).until_true(f"{name} running",
                                                 lambda: handle.is_running(name))
        handle.signal(name, signal.SIGKILL)
        Wait(within=10, interval=0.1).until_true(f"{name} dead",
                                                 lambda: not handle.is_running(name))
        runtime = handle.runtime
        assert isinstance(runtime, ContainerRuntime)
        with pytest.raises(Exception, match="exited with status 137"):
            runtime.wait_ready(name, within=3)
        assert runtime.restart_count(name) == 0
    finally:
        assert handle.down().clean


def test_a_live_restart_policy_update_keeps_it_running_and_is_obeyed(stack: Stack) -> None:
    """The stack file's policy changed to ``never`` and applied in place: the running
    container is not restarted by the update, and the engine then leaves it dead."""
    name = stack.topology.front_door.name
    stack.start(name)
    Wait(within=15, interval=0.1).until_true(f"{name} running", lambda: stack.is_running(name))
    before = stack.pid(name)
    runtime = stack.runtime
    assert isinstance(runtime, ContainerRuntime)
    assert runtime.restart_policy_in_effect(name) == "unless-stopped"
    never = replace(stack.topology.restart, front_door=RestartPolicy(policy="never"))
    stack.use_topology(replace(stack.topology, restart=never))
    assert runtime.apply_restart_policy(name) == "no"
    assert stack.is_running(name) and stack.pid(name) == before
    stack.signal(name, signal.SIGKILL)
    Wait(within=10, interval=0.1).until_true(f"{name} dead", lambda: not stack.is_running(name))
    with pytest.raises(Exception, match="exited with status 137"):
        runtime.wait_ready(name, within=3)
    assert runtime.restart_count(name) == 0


def test_a_node_container_sits_in_the_nodes_memory_cgroup(stack: Stack) -> None:
    """The memory capability works on the node's cgroup; the engine puts the node's
    container inside it (checked without starting vLLM: the spec is what is placed)."""
    runtime = stack.runtime
    assert isinstance(runtime, ContainerRuntime)
    if runtime.memory is None:
        pytest.skip("this host does not let llm-drill create memory cgroups")
    node = stack.node_names[0]
    args = runtime.cgroup_args(runtime.specs()[node])
    assert args == {"cgroup_parent": f"/llm-drill/{stack.run_id}/{node}"}


def test_a_sigkilled_owner_leaves_no_container(engine: EngineFiles, tmp_path: Path) -> None:
    """The owner (a pytest session, here a child) dies by SIGKILL with a container running:
    the watchdog removes it by label."""
    home = tmp_path / "home"
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from harness.stack.stack import create_stack\n"
        f"s = create_stack(Path({str(shifted_stack_file(tmp_path))!r}), home=Path({str(home)!r}),"
        " runtime='container', owned_by_me=True)\n"
        "s.runtime._prepare()\n"
        "s.start(s.topology.webhook.name)\n"
        "print(s.run_id, flush=True)\n"
        "time.sleep(600)\n")
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, DOCKER_HOST=engine.url))
    try:
        assert owner.stdout is not None
        run_id = owner.stdout.readline().strip()
        assert _labelled(engine, run_id), "the owner started a container"
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()

    def gone() -> Probe[None]:
        left = _labelled(engine, run_id)
        return Probe(done=not left, seen=f"still there: {left}")

    Wait(within=60, interval=0.5).until("the watchdog to remove the run's containers", gone)


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(Unreachable, match=r"nothing\.sock.*docker\.io"):
        connect(url)


def test_the_node_network_is_the_runs_own_and_goes_with_it(stack: Stack,
                                                           engine: EngineFiles) -> None:
    runtime = stack.runtime
    assert isinstance(runtime, ContainerRuntime) and runtime.network is not None
    subnet = SHIFTED_SUBNET
    assert interface_on(subnet) == ""
    runtime.nodes_network.ensure()
    runtime.nodes_network.ensure()  # idempotent
    client = connect(engine.url)
    try:
        [network] = client.networks.list(filters={"label": f"{RUN_LABEL}={stack.run_id}"})
        assert network.attrs["Internal"] is True
        assert network.attrs["IPAM"]["Config"][0]["Subnet"] == subnet
    finally:
        client.close()
    assert interface_on(subnet).startswith("br-"), "this host holds the subnet's gateway"
    assert stack.topology.node_url("node1").startswith("http://172.31.251.10:")
    left = stack.down()
    assert left.clean, left
    assert interface_on(subnet) == "", "the bridge went with the network"


def test_a_node_subnet_this_host_already_uses_is_refused(engine: EngineFiles,
                                                         tmp_path: Path) -> None:
    handle = _stack(engine, tmp_path, "on-failure", subnet="127.0.0.0/8")
    try:
        runtime = handle.runtime
        assert isinstance(runtime, ContainerRuntime)
        with pytest.raises(ConfigError, match="already used on this host by lo") as caught:
            runtime.nodes_network.ensure()
        assert caught.value.field == "node_network.subnet"
        assert caught.value.path.endswith(".yaml")
    finally:
        handle.down()
