"""Attaching to a compose project on a real Docker Engine (the project's own daemon,
started here and stopped after): containers labelled as compose labels them, started by
the test as a user's ``docker compose up`` would, on ports 10000 above the stack file's.

Checked: roles found by service name and by the ``llm-drill.component`` label; a
project missing required components is refused naming what was found and what is
missing; process faults are available (a local engine, pids proven the containers');
a SIGKILL from this host is the engine's to recover (its restart policy, not
llm-drill); a kill through the API stays down and is never removed (the container is the
user's), and ``start`` brings the same container back. Needs ``dockerd``."""

from __future__ import annotations

import shutil
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import StackError
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
from harness.stack.runtime import Capability
from harness.topology import load_topology
from harness.waits import Wait
from tests.integration.stackfiles import shifted_stack_file

pytestmark = pytest.mark.skipif(shutil.which("dockerd") is None,
                                reason="no dockerd (apt-get install -y docker.io iptables)")

@pytest.fixture
def stack_file(tmp_path: Path) -> Path:
    return shifted_stack_file(tmp_path)


@pytest.fixture
def project(engine: EngineFiles, stack_file: Path) -> Iterator[str]:
    """Two services of a user's project: HAProxy's role taken by a plain HTTP server
    under the service name ``frontdoor``, and a ``webhook`` whose service is called
    ``alert-sink`` and says its role by label. Removed at the end (the test made them)."""
    name = f"shop{uuid.uuid4().hex[:8]}"
    client = connect(engine.url)
    image = ensure_base_image(client)
    t = load_topology(stack_file)
    mounts = {path: {"bind": path, "mode": "ro"}
              for path in ("/usr", "/etc", sys.prefix, sys.base_prefix) if Path(path).is_dir()}
    services = {"frontdoor": (t.front_door.port, {}),
                "alert-sink": (t.webhook.port, {COMPONENT_LABEL: t.webhook.name})}
    try:
        for service, (port, labels) in services.items():
            client.containers.run(
                image, [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                name=f"{name}-{service}-1", detach=True, network_mode="host", volumes=mounts,
                labels={PROJECT_LABEL: name, SERVICE_LABEL: service, **labels},
                restart_policy={"Name": "unless-stopped"})
        yield name
    finally:
        for container in client.containers.list(all=True,
                                                filters={"label": f"{PROJECT_LABEL}={name}"}):
            container.remove(force=True)
        client.close()


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
