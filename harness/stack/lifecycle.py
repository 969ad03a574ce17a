"""What every runtime that starts the stack does alike: which components, in what
order, and what follows a component's readiness or precedes its stop on purpose."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness.clients.prometheus import PrometheusClient
from harness.errors import ComponentFailed, NotReady, QueryError, Unreachable
from harness.render.run_configs import (
    remove_scrape_target,
    scrape_instance,
    write_scrape_target,
)
from harness.runs import Paths
from harness.stack import components as comp
from harness.stack.model import RECIPES, ensure_model
from harness.stack.preflight import find_binary, require_module
from harness.stack.runtime import Phase
from harness.topology import Topology
from harness.waits import Wait

UNLIST_WITHIN_S = 15.0  # discovery applies changes every 5 s, plus a scrape

Emit = Callable[[str, Phase, float, str], None]


def build_host_specs(t: Topology, paths: Paths,
                     cgroup_root: Path | None) -> dict[str, comp.ComponentSpec]:
    """The components with this host's binaries and model directories (the container
    runtime mounts the same paths, so its specs are these too)."""
    require_module("vllm", comp.STACK_HINT)
    bins = comp.Binaries(
        router=find_binary(["vllm-router"], comp.STACK_HINT),
        haproxy=find_binary(["haproxy"], "apt-get install -y haproxy"),
        prometheus=find_binary(["prometheus"], "apt-get install -y prometheus"),
        alertmanager=find_binary(["prometheus-alertmanager", "alertmanager"],
                                 "apt-get install -y prometheus-alertmanager"))
    models = {n.name: ensure_model(RECIPES[t.node_revision(n)]) for n in t.all_nodes()}
    return comp.build_specs(t, paths, bins, models, cgroup_root)


def start_phases(t: Topology) -> list[list[str]]:
    """Start order: what nothing depends on, then the gateways, the front door, and the
    rollout controller (it drives the gateways) once they serve."""
    phases = [[t.fault_proxy.name, t.webhook.name, t.prometheus.name, t.alertmanager.name,
               *(n.name for n in t.nodes)], [g.name for g in t.gateways], [t.front_door.name]]
    return phases + ([[t.rollout.name]] if t.rollout is not None else [])


def start_in_phases(t: Topology, start: Callable[[str], None],
                    wait_ready: Callable[[str], float]) -> None:
    """Start each phase's components, then wait for all of them in parallel."""
    for names in start_phases(t):
        for name in names:
            start(name)
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = [pool.submit(wait_ready, n) for n in names]
            errors = [exc for f in futures if (exc := f.exception()) is not None]
        if errors:
            raise errors[0]


def bring_up(t: Topology, prepare: Callable[[], None], start: Callable[[str], None],
             wait_ready: Callable[[str], float], down: Callable[[], None]) -> None:
    """A runtime's ``up``: prepare, start in phases; on any failure (an interrupt
    included) tear down whatever was started, then raise."""
    try:
        prepare()
        start_in_phases(t, start, wait_ready)
    except BaseException:
        down()
        raise


def on_demand(t: Topology, name: str) -> bool:
    """Nodes outside the default rotation (the canary) run only while a drill needs them."""
    return t.canary is not None and name == t.canary.name


def after_ready(t: Topology, paths: Paths, http: httpx.Client, name: str) -> None:
    if name == t.fault_proxy.name:  # a (re)started proxy knows no routes
        populate_proxies(t, http)
    if on_demand(t, name):  # scraped once it serves, so starting is not "down"
        write_scrape_target(t, paths, t.node(name))


def populate_proxies(t: Topology, http: httpx.Client) -> None:
    body = t.proxy_routes()
    response = http.post(f"{t.fault_proxy_url}/populate", json=body)
    if response.status_code not in (200, 201):
        raise ComponentFailed(t.fault_proxy.name,
                              f"populate answered {response.status_code}: {response.text}")


def unlist_on_demand(t: Topology, paths: Paths, http: httpx.Client, name: str,
                     emit: Emit) -> None:
    """Stop scraping an on-demand node before stopping it on purpose: Prometheus applies
    file discovery changes up to 5 s late, and scrapes of the stopped node in between
    read ``up == 0`` (NodeDown goes pending, and fires if the stop is slow)."""
    if not on_demand(t, name):
        return
    remove_scrape_target(paths, name)
    instance = scrape_instance(t, t.node(name))
    prometheus = PrometheusClient(t.prometheus_url, http, timeout=2.0)
    try:
        Wait(within=UNLIST_WITHIN_S, interval=0.25, transient=(QueryError,)).until_true(
            f"Prometheus to stop scraping {instance}",
            lambda: not _still_scraped(prometheus, instance))
    except NotReady as exc:
        emit(name, Phase.HEALTH, 0.0, f"still scraped when stopped: {exc}")


def _still_scraped(prometheus: PrometheusClient, instance: str) -> bool:
    try:
        return instance in prometheus.scraped_instances("vllm")
    except Unreachable:  # no Prometheus running: nobody scrapes
        return False
