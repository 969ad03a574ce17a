"""Render every config file a run needs into its run directory."""

from __future__ import annotations

from harness.files import write_atomic
from harness.stack.components import Paths
from harness.templates import render
from harness.topology import Topology

RULES_FILE = "alerts.rules.yml"


def render_run_configs(topology: Topology, paths: Paths) -> None:
    """Write prometheus.yml, alert rules, alertmanager.yml and haproxy.cfg for one run."""
    from harness.observe.rules import render_alertmanager, render_rules

    cfg = paths.config
    write_atomic(cfg(RULES_FILE), render_rules(topology))
    write_atomic(cfg("prometheus.yml"),
                 render("prometheus.yml.j2", topology, rules_file=str(cfg(RULES_FILE))))
    write_atomic(cfg("alertmanager.yml"), render_alertmanager(topology))
    write_atomic(cfg("haproxy.cfg"), render("haproxy.cfg.j2", topology))
