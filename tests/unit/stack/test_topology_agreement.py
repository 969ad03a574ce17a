"""One topology: the compose file, the process runtime and the rendered configs agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.stack import components as comp
from harness.stack.compose import COMPOSE_FILE, container_specs, render_compose
from harness.templates import render
from harness.topology import load_topology


def _host_specs(tmp_path: Path) -> dict[str, comp.ComponentSpec]:
    topology = load_topology()
    bins = comp.Binaries(router="r", haproxy="h", prometheus="p", alertmanager="a")
    models = {n.name: tmp_path / n.name for n in topology.all_nodes()}
    return comp.build_specs(topology, comp.Paths(tmp_path), bins, models, None)


def test_committed_compose_file_is_current() -> None:
    assert COMPOSE_FILE.read_text() == render_compose(load_topology()), (
        "compose/docker-compose.yml is stale: run `llm-drill render`")


def test_compose_services_match_process_components(tmp_path: Path) -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    host = _host_specs(tmp_path)
    assert set(services) == set(host)
    for name, spec in host.items():
        label = services[name]["labels"]["io.llm-drill.ports"]
        assert label == ",".join(map(str, spec.ports)), name


def test_every_port_of_a_component_is_in_its_command(tmp_path: Path) -> None:
    for name, spec in container_specs(load_topology()).items():
        args = " ".join(spec.argv)
        own = spec.ports[:1] if spec.kind is comp.Kind.FAULT_PROXY else spec.ports
        own = () if spec.kind in (comp.Kind.FRONT_DOOR,) else own
        for port in own:
            assert str(port) in args, f"{name}: port {port} not in {args}"


def test_gateways_reach_nodes_through_the_fault_proxy(tmp_path: Path) -> None:
    topology = load_topology()
    for gw in topology.gateways:
        argv = _host_specs(tmp_path)[gw.name].argv
        for node in topology.nodes:
            assert topology.url(node.proxy_port) in argv
            assert topology.url(node.port) not in argv


def test_haproxy_and_prometheus_targets_come_from_topology() -> None:
    topology = load_topology()
    haproxy = render("haproxy.cfg.j2", topology)
    for gw in topology.gateways:
        assert f"server {gw.name} {topology.host}:{gw.proxy_port} check" in haproxy
    prom = yaml.safe_load(render("prometheus.yml.j2", topology, rules_file="r.yml",
                                 targets_dir="/t"))
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    expected = {f"{topology.host}:{p}" for _, p in topology.ports()
                if p not in {listen for _, listen, _ in topology.proxies()}}
    expected -= {f"{topology.host}:{g.port}" for g in topology.gateways}
    expected -= {f"{topology.host}:{topology.front_door.port}"}
    expected -= {f"{topology.host}:{topology.prometheus.port}",
                 f"{topology.host}:{topology.alertmanager.port}"}
    assert topology.canary is not None  # on demand: discovered from a file while it runs
    expected -= {f"{topology.host}:{topology.canary.port}"}
    assert targets == expected
    vllm = next(job for job in prom["scrape_configs"] if job["job_name"] == "vllm")
    assert vllm["file_sd_configs"] == [{"files": ["/t/*.json"]}]
