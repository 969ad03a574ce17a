"""Render every config file a run needs: into its run directory, or into any directory
a team takes them from (``llm-drill render --out DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.auth import WEBHOOK_TOKEN_ENV, token_from_env
from harness.files import write_atomic
from harness.render.templates import render
from harness.runs import Paths
from harness.topology import NodeSpec, Topology

RULES_FILE = "alerts.rules.yml"
TARGETS_DIR = "targets"


def targets_dir(paths: Paths) -> Path:
    return paths.config("targets")


def scrape_instance(topology: Topology, node: NodeSpec) -> str:
    """The ``instance`` label Prometheus gives a node's scrape target."""
    return topology.node_address(node)


def write_scrape_target(topology: Topology, paths: Paths, node: NodeSpec) -> None:
    """Let Prometheus scrape an on-demand node (file-based discovery, picked up at once)."""
    entry = [{"targets": [scrape_instance(topology, node)],
              "labels": {"component": node.name, "node": node.name}}]
    write_atomic(targets_dir(paths) / f"{node.name}.json", json.dumps(entry))


def remove_scrape_target(paths: Paths, name: str) -> None:
    (targets_dir(paths) / f"{name}.json").unlink(missing_ok=True)


WEBHOOK_TOKEN_FILE = "webhook.token"
VLLM_LOGGING_FILE = "vllm-logging.json"  # read by every node (VLLM_LOGGING_CONFIG_PATH)
#: The logger whose INFO lines name each request a node's engine takes or aborts
#: ("Added request <id>.", "Aborted request(s) <ids>."): the ids only, never a prompt
#: or sampling parameters (those go to other loggers, left at WARNING).
VLLM_REQUEST_LOGGER = "vllm.v1.engine.async_llm"
#: The loggers whose INFO lines are the steps of a node's shutdown (``[shutdown] ...``:
#: drain or abort, how many requests it drained, when its HTTP server went) and its
#: engine's start (its config and timings): no prompt, no sampling parameters.
VLLM_SHUTDOWN_LOGGERS = ("vllm.v1.engine.core", "vllm.entrypoints.launchers.launcher")


def vllm_logging_config() -> dict[str, object]:
    """vLLM's logging (a ``logging.config.dictConfig``): warnings and errors as with
    ``VLLM_LOGGING_LEVEL=WARNING``, plus the request ids of :data:`VLLM_REQUEST_LOGGER`,
    the stack's own evidence of which node served a request, and the shutdown steps of
    :data:`VLLM_SHUTDOWN_LOGGERS`. On stderr, which Python
    writes line by line: a SIGKILL loses nothing already logged."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(asctime)s %(name)s %(message)s"}},
        "handlers": {"vllm": {"class": "logging.StreamHandler", "formatter": "plain",
                              "stream": "ext://sys.stderr"}},
        "loggers": {"vllm": {"handlers": ["vllm"], "level": "WARNING", "propagate": False},
                    VLLM_REQUEST_LOGGER: {"level": "INFO"},
                    **{name: {"level": "INFO"} for name in VLLM_SHUTDOWN_LOGGERS}},
    }
PROXIES_FILE = "toxiproxy.json"  # the fault proxy's routes, as Toxiproxy's -config reads them


def rendered_configs(topology: Topology, *, rules_file: str, targets_dir: str,
                     webhook_token_file: str | None = None) -> dict[str, str]:
    """Every config file by name: alert rules, prometheus.yml, alertmanager.yml, haproxy.cfg,
    the fault proxy's routes (toxiproxy.json) and the nodes' logging (vllm-logging.json).

    ``rules_file`` and ``targets_dir`` are where prometheus.yml finds the rules and the
    on-demand scrape targets (Prometheus resolves relative paths against its config file);
    ``webhook_token_file`` the file Alertmanager reads the receiver's token from.
    """
    from harness.render.rules import render_alertmanager, render_rules

    return {
        RULES_FILE: render_rules(topology),
        "prometheus.yml": render("prometheus.yml.j2", topology, rules_file=rules_file,
                                 targets_dir=targets_dir),
        "alertmanager.yml": render_alertmanager(topology, webhook_token_file),
        "haproxy.cfg": render("haproxy.cfg.j2", topology),
        PROXIES_FILE: json.dumps(topology.proxy_routes(), indent=2) + "\n",
        VLLM_LOGGING_FILE: json.dumps(vllm_logging_config(), indent=2) + "\n",
    }


def render_run_configs(topology: Topology, paths: Paths) -> None:
    """Write prometheus.yml, alert rules, alertmanager.yml and haproxy.cfg for one run;
    with ``LLM_DRILL_WEBHOOK_TOKEN`` set, also the token Alertmanager sends the receiver
    (a 0600 file in the run, never in a config or on a command line)."""
    configs = rendered_configs(topology, rules_file=str(paths.config(RULES_FILE)),
                               targets_dir=str(targets_dir(paths)),
                               webhook_token_file=_webhook_token_file(paths))
    for name, text in configs.items():
        write_atomic(paths.config(name), text)


def _webhook_token_file(paths: Paths) -> str | None:
    token = token_from_env(WEBHOOK_TOKEN_ENV)
    if token is None:
        return None
    return str(write_atomic(paths.config(WEBHOOK_TOKEN_FILE), token))  # mkstemp: 0600


def render_config_dir(topology: Topology, out_dir: Path) -> tuple[Path, ...]:
    """Write every config into ``out_dir``, self-contained: prometheus.yml names the rules
    and ``targets/`` relative to itself, so the directory can be copied anywhere."""
    configs = rendered_configs(topology, rules_file=RULES_FILE, targets_dir=TARGETS_DIR)
    return tuple(write_atomic(out_dir / name, text) for name, text in configs.items())
