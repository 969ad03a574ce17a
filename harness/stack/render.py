"""Render every config file a run needs into its run directory."""

from __future__ import annotations

import json
from pathlib import Path

from harness.files import write_atomic
from harness.stack.components import Paths
from harness.templates import render
from harness.topology import NodeSpec, Topology

RULES_FILE = "alerts.rules.yml"


def targets_dir(paths: Paths) -> Path:
    return paths.config("targets")


def scrape_instance(topology: Topology, node: NodeSpec) -> str:
    """The ``instance`` label Prometheus gives a node's scrape target."""
    return f"{topology.host}:{node.port}"


def write_scrape_target(topology: Topology, paths: Paths, node: NodeSpec) -> None:
    """Let Prometheus scrape an on-demand node (file-based discovery, picked up at once)."""
    entry = [{"targets": [scrape_instance(topology, node)],
              "labels": {"component": node.name, "node": node.name}}]
    write_atomic(targets_dir(paths) / f"{node.name}.json", json.dumps(entry))


def remove_scrape_target(paths: Paths, name: str) -> None:
    (targets_dir(paths) / f"{name}.json").unlink(missing_ok=True)


def render_run_configs(topology: Topology, paths: Paths) -> None:
    """Write prometheus.yml, alert rules, alertmanager.yml and haproxy.cfg for one run."""
    from harness.observe.rules import render_alertmanager, render_rules

    cfg = paths.config
    write_atomic(cfg(RULES_FILE), render_rules(topology))
    write_atomic(cfg("prometheus.yml"),
                 render("prometheus.yml.j2", topology, rules_file=str(cfg(RULES_FILE)),
                        targets_dir=str(targets_dir(paths))))
    write_atomic(cfg("alertmanager.yml"), render_alertmanager(topology))
    write_atomic(cfg("haproxy.cfg"), render("haproxy.cfg.j2", topology))
