"""The generated compose file, run by a real compose implementation (Debian's
``docker-compose`` 1.29) on the project's own engine: every service the stack needs is up
and ready, a completion goes through the front door, the restart policies the file names
are the engine's, and ``down`` leaves nothing.

No registry can be reached, so the images the file names (vLLM's, HAProxy's,
Prometheus', Alertmanager's, Toxiproxy's and llm-drill's own) cannot be pulled here. A
second file given to compose after it (``local-images.yml``, written by this test) swaps
each service's image for the local base image with this host's binaries mounted, and
gives it the entrypoint its real image has; every command, port, label, volume, restart
policy and dependency comes from the generated file unchanged. Ports are 10000 above the
stack file's, so the session's stack keeps running beside it; the canary (a node started
on demand) is left out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.stack import components as comp
from harness.stack.compose import COMPOSE_FILE_NAME, container_specs, render_all
from harness.stack.compose_runtime import PROJECT_LABEL, ComposeRuntime, required_components
from harness.stack.container_runtime import (
    container_init,
    host_binds,
    numa_access,
    vllm_cache_dir,
)
from harness.stack.engine import EngineFiles, connect, ensure_base_image
from harness.stack.model import RECIPES, default_cache_dir, ensure_model
from harness.topology import Topology, load_topology
from tests.integration.stackfiles import shifted_stack_file

pytestmark = [
    pytest.mark.skipif(shutil.which("dockerd") is None,
                       reason="no dockerd (apt-get install -y docker.io iptables)"),
    pytest.mark.skipif(shutil.which("docker-compose") is None,
                       reason="no docker-compose (apt-get install -y docker-compose)"),
]

#: What each real image runs its command with (their ENTRYPOINTs); the rest run it as is.
ENTRYPOINTS = {
    comp.Kind.FAULT_PROXY: (sys.executable, "-m", "harness.toxiproxy"),  # Toxiproxy's flags
    comp.Kind.PROMETHEUS: ("/usr/bin/prometheus",),
    comp.Kind.ALERTMANAGER: (shutil.which("prometheus-alertmanager")
                             or shutil.which("alertmanager") or "alertmanager",),
}
UP_WITHIN_S = 600


def local_images(t: Topology, image: str) -> dict[str, Any]:
    """The override: each service on the local base image, the host's binaries mounted
    where they are, the real image's entrypoint behind the engine's init; nodes get what
    vLLM's CPU images are documented to need."""
    venv_bin = str(Path(sys.executable).parent)
    mounts = [f"{path}:{path}:{'ro' if ro else 'rw'}" for path, ro in host_binds().items()]
    services: dict[str, Any] = {}
    for name, spec in container_specs(t).items():
        service: dict[str, Any] = {
            "image": image, "volumes": mounts, "tmpfs": ["/tmp:exec"],
            "entrypoint": [*container_init(), *ENTRYPOINTS.get(spec.kind, ())],
            "environment": {"PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                            "HOME": "/tmp", "VLLM_CACHE_ROOT": str(vllm_cache_dir())},
        }
        if spec.kind is comp.Kind.NODE:
            service |= {**numa_access(spec), "shm_size": "1g"}
        services[name] = service
    return {"version": "2.4", "services": services}


@pytest.fixture
def compose_dir(tmp_path: Path) -> Path:
    """``llm-drill render`` of the shifted stack, as a user would copy it: the compose
    file and configs, ``run/`` and ``models/`` beside them."""
    t = load_topology(shifted_stack_file(tmp_path))
    out = tmp_path / "compose"
    render_all(t, out)
    (out / "run").mkdir()
    for node in t.nodes:
        ensure_model(RECIPES[t.node_revision(node)])
    (out / "models").symlink_to(default_cache_dir())
    return out


def compose(engine: EngineFiles, folder: Path, project: str, *args: str,
            within: float = UP_WITHIN_S) -> subprocess.CompletedProcess[str]:
    argv = ("docker-compose", "-p", project, "-f", COMPOSE_FILE_NAME, "-f",
            "local-images.yml", *args)
    done = subprocess.run(argv, cwd=folder, env=dict(os.environ, DOCKER_HOST=engine.url),
                          capture_output=True, text=True, timeout=within, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr[-2000:]}"
    return done


@pytest.fixture
def project(engine: EngineFiles, compose_dir: Path, tmp_path: Path) -> Iterator[str]:
    """The compose project up (every service but the canary), torn down after."""
    name = f"drill{uuid.uuid4().hex[:8]}"
    t = load_topology(tmp_path / "stack.yaml")
    client = connect(engine.url)
    try:
        image = ensure_base_image(client)
    finally:
        client.close()
    (compose_dir / "local-images.yml").write_text(yaml.safe_dump(local_images(t, image)))
    services = [n for n in container_specs(t) if t.canary is None or n != t.canary.name]
    try:
        compose(engine, compose_dir, name, "up", "-d", *services)
        yield name
    finally:
        compose(engine, compose_dir, name, "down", "--timeout", "30")


def test_the_generated_compose_file_runs_the_stack(project: str, engine: EngineFiles,
                                                   tmp_path: Path) -> None:
    t = load_topology(tmp_path / "stack.yaml")
    runtime = ComposeRuntime(t, project, engine.url)
    try:
        runtime.up()  # every required component has a running container
        for name in required_components(t):
            runtime.wait_ready(name, within=UP_WITHIN_S)
        for name in (t.nodes[0].name, t.gateways[0].name, t.front_door.name):
            assert runtime.restart_policy_in_effect(name) == "unless-stopped", name
        assert runtime.restart_policy_in_effect(t.webhook.name) in ("", "no")
    finally:
        runtime.close()
    answer = httpx.post(f"{t.front_door_url}/v1/completions", timeout=60,
                        json={"model": t.model.served_name, "prompt": "hello", "max_tokens": 4})
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("x-request-id"), "the front door's own request id"
    routes = httpx.get(f"{t.fault_proxy_url}/proxies", timeout=10).json()
    assert set(routes) == {name for name, _, _ in t.proxies()}, "routes from -config"


def test_down_leaves_nothing_of_the_project(engine: EngineFiles, compose_dir: Path,
                                            tmp_path: Path) -> None:
    name = f"drill{uuid.uuid4().hex[:8]}"
    t = load_topology(tmp_path / "stack.yaml")
    client = connect(engine.url)
    try:
        (compose_dir / "local-images.yml").write_text(
            yaml.safe_dump(local_images(t, ensure_base_image(client))))
        compose(engine, compose_dir, name, "up", "-d", t.webhook.name, t.fault_proxy.name)
        assert client.containers.list(filters={"label": f"{PROJECT_LABEL}={name}"})
        compose(engine, compose_dir, name, "down", "--timeout", "30")
        labelled = {"label": f"{PROJECT_LABEL}={name}"}
        assert client.containers.list(all=True, filters=labelled) == []
        assert client.networks.list(filters=labelled) == []
    finally:
        client.close()
