"""One topology: the compose file, the process runtime and the rendered configs agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from harness.render.templates import render
from harness.runs import Paths
from harness.stack import components as comp
from harness.stack.compose import COMPOSE_FILE_NAME, container_specs, render_all
from harness.topology import load_topology

#: ``llm-drill render`` output committed to the repository (the checkout's compose/).
COMMITTED = Path(__file__).resolve().parents[3] / "compose"


def _host_specs(tmp_path: Path) -> dict[str, comp.ComponentSpec]:
    topology = load_topology()
    bins = comp.Binaries(router="r", haproxy="h", prometheus="p", alertmanager="a")
    models = {n.name: tmp_path / n.name for n in topology.all_nodes()}
    return comp.build_specs(topology, Paths(tmp_path), bins, models, None)


def test_committed_render_output_is_current(tmp_path: Path) -> None:
    fresh = render_all(load_topology(), tmp_path)
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(p.name for p in fresh), (
        "compose/ holds exactly what `llm-drill render` writes")
    for path in fresh:
        assert (COMMITTED / path.name).read_text() == path.read_text(), (
            f"compose/{path.name} is stale: run `llm-drill render` in the repository root")


def test_compose_services_match_process_components(tmp_path: Path) -> None:
    services = yaml.safe_load((COMMITTED / COMPOSE_FILE_NAME).read_text())["services"]
    host = _host_specs(tmp_path)
    assert set(services) == set(host)
    for name, spec in host.items():
        label = services[name]["labels"]["llm-drill.ports"]
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


def test_a_node_drains_for_its_shutdown_timeout_in_both_runtimes(tmp_path: Path) -> None:
    """vLLM's --shutdown-timeout from the stack file; the container engine's SIGKILL
    waits longer than the drain."""
    timeout = load_topology().model.shutdown_timeout_s
    services = yaml.safe_load((COMMITTED / COMPOSE_FILE_NAME).read_text())["services"]
    for name, spec in _host_specs(tmp_path).items():
        if spec.kind is not comp.Kind.NODE:
            continue
        argv = list(spec.argv)
        assert argv[argv.index("--shutdown-timeout") + 1] == str(timeout), name
        grace = int(str(services[name]["stop_grace_period"]).removesuffix("s"))
        assert grace > timeout, name
