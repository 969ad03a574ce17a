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

The project comes up once for the module. On it, a drill runs as a team runs one against
its own compose project: ``pytest drills/ --compose-project NAME``, in a pytest of its
own, nothing of the project rebuilt or restarted by llm-drill: gateway failover, its
gateway SIGKILLed from this host (the engine's restart policy from the file brings it
back) and cut off by the project's own fault proxy. ``down`` then leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.drill.journal import read_journal
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
REPO = Path(__file__).resolve().parents[2]
#: The drill run on the project: a gateway killed (the engine restarts it) and cut off
#: (a toxic on the project's fault proxy), each under load through the front door.
DRILL_ON_PROJECT = "drills/test_gateway_failover.py"
DRILL_JOURNALS = ("gateway_failover_kill", "gateway_failover_cut")
KILLED = "gateway-a"
DRILL_WITHIN_S = 900


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


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's project lives: its stack file and its rendered files."""
    folder = tmp_path_factory.mktemp("compose-project")
    shifted_stack_file(folder)
    return folder


@pytest.fixture(scope="module")
def compose_dir(project_dir: Path) -> Path:
    """``llm-drill render`` of the shifted stack, as a user would copy it: the compose
    file and configs, ``run/`` and ``models/`` beside them."""
    t = load_topology(project_dir / "stack.yaml")
    out = project_dir / "compose"
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


@pytest.fixture(scope="module")
def project(engine: EngineFiles, compose_dir: Path, project_dir: Path) -> Iterator[str]:
    """The compose project up (every service but the canary); ``down`` after, which must
    leave no container and no network of it."""
    name = f"drill{uuid.uuid4().hex[:8]}"
    t = load_topology(project_dir / "stack.yaml")
    with closing(connect(engine.url)) as client:
        image = ensure_base_image(client)
    (compose_dir / "local-images.yml").write_text(yaml.safe_dump(local_images(t, image)))
    services = [n for n in container_specs(t) if t.canary is None or n != t.canary.name]
    try:
        compose(engine, compose_dir, name, "up", "-d", *services)
        yield name
    finally:
        compose(engine, compose_dir, name, "down", "--timeout", "30")
    assert left_of(engine, name) == ([], []), "containers and networks left after down"


def test_the_generated_compose_file_runs_the_stack(project: str, engine: EngineFiles,
                                                   project_dir: Path) -> None:
    t = load_topology(project_dir / "stack.yaml")
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


def test_a_drill_passes_on_the_project_and_the_engine_restarts_what_it_killed(
        project: str, engine: EngineFiles, project_dir: Path, tmp_path: Path) -> None:
    """What a team runs against its own project: the drill passes, judged on the project's
    own components, and the killed gateway's restart is the engine's (its restart count
    went up)."""
    t = load_topology(project_dir / "stack.yaml")
    restarts_before = restart_count(t, project, engine)
    home = tmp_path / "home"
    argv = (sys.executable, "-m", "pytest", DRILL_ON_PROJECT, "--compose-project", project,
            "--stack-file", str(project_dir / "stack.yaml"), "--llm-drill-home", str(home),
            "-p", "no:cacheprovider", "-q", f"--basetemp={tmp_path / 'pytest'}")
    done = subprocess.run(argv, cwd=REPO, env=dict(os.environ, DOCKER_HOST=engine.url),
                          capture_output=True, text=True, timeout=DRILL_WITHIN_S, check=False)
    if done.returncode != 0:
        logs = keep_logs(engine, project, tmp_path / "logs")
        pytest.fail(f"the drill failed on the project (its containers' logs: {logs}):\n"
                    f"{done.stdout[-4000:]}")
    outcomes = {path.stem: read_journal(path).outcome
                for path in home.glob("runs/*/journals/*.json")}
    assert outcomes == dict.fromkeys(DRILL_JOURNALS, "passed")
    assert restart_count(t, project, engine) > restarts_before, "the engine's restart"


def restart_count(t: Topology, project: str, engine: EngineFiles) -> int:
    """How many times the engine restarted the killed gateway's container."""
    runtime = ComposeRuntime(t, project, engine.url)
    try:
        runtime.up()
        return runtime.restart_count(KILLED)
    finally:
        runtime.close()


def keep_logs(engine: EngineFiles, project: str, folder: Path) -> Path:
    """Each container's log of the project, as the engine holds it, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with closing(connect(engine.url)) as client:
        for container in client.containers.list(all=True, filters=labelled(project)):
            (folder / f"{container.name}.log").write_bytes(container.logs())
    return folder


def left_of(engine: EngineFiles, project: str) -> tuple[list[str], list[str]]:
    """The names of the project's containers and networks the engine still has."""
    with closing(connect(engine.url)) as client:
        return ([c.name for c in client.containers.list(all=True, filters=labelled(project))],
                [n.name for n in client.networks.list(filters=labelled(project))])


def labelled(project: str) -> dict[str, str]:
    return {"label": f"{PROJECT_LABEL}={project}"}
