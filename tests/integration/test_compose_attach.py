"""Attaching to a compose project on a real Docker Engine (the project's own daemon,
started here and stopped after): containers labelled as compose labels them, started by
the test as a user's ``docker compose up`` would, on ports 10000 above the stack file's.

Checked: roles found by service name and by the ``llm-drill.component`` label; a
project missing required components is refused naming what was found and what is
missing; process faults are available (a local engine, pids proven the containers');
a SIGKILL from this host is the engine's to recover (its restart policy, not
llm-drill); a kill through the API stays down and is never removed (the container is the
user's), and ``start`` brings the same container back; a memory fault caps a node in its
container's own cgroup, the kernel OOM-kills it there, and the user's limit is what the
engine keeps and what the cgroup reads again after. Needs ``dockerd``."""

from __future__ import annotations

import shutil
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.errors import StackError
from harness.faults.memory import force_oom
from harness.runs import Paths
from harness.stack.components import COMPONENT_LABEL
from harness.stack.compose_runtime import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    ComposeRuntime,
)
from harness.stack.engine import (
    EngineFiles,
    connect,
    ensure_base_image,
)
from harness.stack.runtime import Capability, ComponentMemory
from harness.topology import load_topology
from harness.waits import Wait
from tests.integration.stackfiles import shifted_stack_file

pytestmark = pytest.mark.skipif(shutil.which("dockerd") is None,
                                reason="no dockerd (apt-get install -y docker.io iptables)")

@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    return shifted_stack_file(tmp_path)


#: The limit the user gave the node's container (``mem_limit``): what a memory fault
#: must leave in the engine's record, and give back to the cgroup when it lifts its cap.
USER_LIMIT = 768 * 2**20
#: node1's stand-in: a process that holds 64 MiB of touched memory
HOLDS_MEMORY = "import time; held = b'x' * (64 << 20); time.sleep(3600)"


@contextmanager
def users_project(engine: EngineFiles,
                  services: dict[str, tuple[list[str], dict[str, str], dict[str, object]]]
                  ) -> Iterator[str]:
    """A user's compose project as ``docker compose up`` leaves it: one running container
    per service (argv, extra labels, extra engine options), labelled as compose labels
    them, with the host's Python mounted in. Removed at the end (the test made them)."""
    name = f"shop{uuid.uuid4().hex[:8]}"
    client = connect(engine.url)
    image = ensure_base_image(client)
    mounts = {path: {"bind": path, "mode": "ro"}
              for path in ("/usr", "/etc", sys.prefix, sys.base_prefix) if Path(path).is_dir()}
    try:
        for service, (argv, labels, options) in services.items():
            client.containers.run(
                image, argv, name=f"{name}-{service}-1", detach=True, network_mode="host",
                volumes=mounts, labels={PROJECT_LABEL: name, SERVICE_LABEL: service, **labels},
                restart_policy={"Name": "unless-stopped"}, **options)
        yield name
    finally:
        for container in client.containers.list(all=True,
                                                filters={"label": f"{PROJECT_LABEL}={name}"}):
            container.remove(force=True)
        client.close()


def http_server(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


@pytest.fixture
def project(engine: EngineFiles, stack_file: Path) -> Iterator[str]:
    """Two services: HAProxy's role taken by a plain HTTP server under the service name
    ``frontdoor``, and a ``webhook`` whose service is called ``alert-sink`` and says its
    role by label."""
    t = load_topology(stack_file)
    with users_project(engine, {
            "frontdoor": (http_server(t.front_door.port), {}, {}),
            "alert-sink": (http_server(t.webhook.port), {COMPONENT_LABEL: t.webhook.name}, {}),
    }) as name:
        yield name


@pytest.fixture
def node_project(engine: EngineFiles) -> Iterator[str]:
    """One service, ``node1``, whose container the user limited to ``USER_LIMIT``."""
    with users_project(engine, {"node1": ([sys.executable, "-c", HOLDS_MEMORY], {},
                                          {"mem_limit": USER_LIMIT})}) as name:
        yield name


@pytest.fixture
def runtime(project: str, engine: EngineFiles, stack_file: Path) -> Iterator[ComposeRuntime]:
    handle = ComposeRuntime(load_topology(stack_file), project, engine.url)
    try:
        yield handle
    finally:
        handle.close()


def test_roles_come_from_service_names_and_labels(runtime: ComposeRuntime,
                                                  project: str) -> None:
    t = runtime.topology
    assert runtime.roles.containers == {t.front_door.name: f"{project}-frontdoor-1",
                                        t.webhook.name: f"{project}-alert-sink-1"}


def test_a_project_missing_required_components_is_refused_naming_them(
        runtime: ComposeRuntime, project: str) -> None:
    with pytest.raises(StackError, match=rf"found .*{project}-frontdoor-1.*missing node1"):
        runtime.up()


def test_the_engine_recovers_a_crash_and_an_api_kill_stays_down(runtime: ComposeRuntime) -> None:
    name = runtime.topology.front_door.name
    assert Capability.PROCESS_CONTROL in runtime.capabilities, "a local engine, pids proven"
    Wait(within=15, interval=0.1).until_true(f"{name} running", lambda: runtime.is_running(name))
    before = runtime.pid(name)
    assert before is not None and before in runtime.pids(name)
    runtime.signal(name, signal.SIGKILL)
    Wait(within=20, interval=0.1).until_true(
        "the engine to restart it", lambda: runtime.restart_count(name) >= 1
        and runtime.is_running(name) and runtime.pid(name) != before)
    assert runtime.kill(name) == 137
    assert not runtime.is_running(name) and runtime.pid(name) is None
    assert runtime.log_tail(name) is not None  # the container is kept: its log still reads
    runtime.start(name)
    Wait(within=15, interval=0.1).until_true("the same container back",
                                            lambda: runtime.is_running(name))


def test_nothing_of_the_project_is_removed_by_down(runtime: ComposeRuntime,
                                                   engine: EngineFiles, project: str) -> None:
    runtime.down()
    client = connect(engine.url)
    try:
        running = client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}"})
    finally:
        client.close()
    assert len(running) == 2


def test_a_memory_fault_caps_the_nodes_own_cgroup_and_gives_the_users_limit_back(
        node_project: str, engine: EngineFiles, stack_file: Path, tmp_path: Path) -> None:
    """The kernel OOM-kills node1's process under a cap llm-drill wrote to the container's
    own cgroup; the engine's record of the container keeps the user's limit throughout,
    the engine's restart policy brings it back, and lifting the cap gives the cgroup the
    user's limit again."""
    runtime = ComposeRuntime(load_topology(stack_file), node_project, engine.url,
                             paths=Paths(tmp_path / "run"), run_id="attach-memory")
    try:
        assert Capability.MEMORY_CONTROL in runtime.capabilities, "local engine, root, v1"
        assert runtime.memory is not None
        node, memory = "node1", ComponentMemory(runtime.memory, "node1")
        assert runtime.memory.controls(node)
        assert not runtime.memory.controls(runtime.topology.front_door.name)
        Wait(within=30, interval=0.2).until_true(
            "node1 to hold its 64 MiB", lambda: memory.usage() >= 64 * 2**20)
        assert memory.limit() == USER_LIMIT
        pids = runtime.pids(node)
        kill, balloon = force_oom(memory, headroom_mib=32, within=30)
        try:
            assert kill.oom_kills >= 1 and kill.victim_pid in pids, kill
            assert engines_limit(runtime, node) == USER_LIMIT, "the engine's record untouched"
        finally:
            balloon.pop()
            memory.clear_limit()
        Wait(within=30, interval=0.2).until_true(
            "the engine to restart node1", lambda: runtime.restart_count(node) >= 1
            and runtime.is_running(node) and runtime.pid(node) not in pids)
        assert memory.limit() == USER_LIMIT
        assert engines_limit(runtime, node) == USER_LIMIT
    finally:
        runtime.close()


def engines_limit(runtime: ComposeRuntime, name: str) -> int:
    container = runtime.engine.containers.get(runtime.roles.containers[name])
    return int(container.attrs["HostConfig"]["Memory"])
