"""Ways to break the real stack, live and reversibly: each is a context manager that
breaks one thing on entry and restores the shipped configuration on exit, whatever
happens in between."""

from __future__ import annotations

import configparser
import contextlib
import re
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from types import ModuleType

import httpx
import pytest
import yaml

from drills.catalogue import Drill
from harness.clients.prometheus import PrometheusClient
from harness.errors import NotReady, Unreachable
from harness.faults.base import FaultBase
from harness.files import write_atomic
from harness.render.run_configs import RULES_FILE, render_run_configs
from harness.render.templates import render
from harness.runs import Paths
from harness.stack.container_runtime import ContainerRuntime
from harness.stack.stack import Stack
from harness.stack.supervisor import supervisord_config
from harness.topology import GatewayPolicy, RestartPolicy, UpgradePolicy
from harness.waits import Wait

Rule = dict[str, object]


#: How long a reload waits for Prometheus to hold no active alert (then reloads anyway).
QUIET_WITHIN_S = 60.0


def reload_prometheus(stack: Stack) -> None:
    """Reload Prometheus once none of its alerts is active, and return once it lists an
    Alertmanager to send to again. A reload empties that list until Prometheus has read
    its configuration again, and an alert sent meanwhile is dropped
    (prometheus/prometheus#8639): a CI run lost a resolution there (the revert of a broken
    rule, as node1 resumed), Alertmanager held GatewayBackendDown firing until its endsAt
    (four resend delays), and the same alert's next firing, in the next breakage test 40 s
    later, was never delivered. With no alert active a reload has nothing to lose."""
    with httpx.Client(timeout=10) as http:
        prometheus = PrometheusClient(stack.prometheus_url, http)
        with contextlib.suppress(NotReady):
            Wait(within=QUIET_WITHIN_S, interval=0.5, transient=(Unreachable,)).until_true(
                "Prometheus to hold no active alert before its reload",
                lambda: not prometheus.alerts())
        http.post(f"{stack.prometheus_url}/-/reload").raise_for_status()
        Wait(within=30, interval=0.2,
             transient=(httpx.HTTPError, ValueError, KeyError, TypeError)).until_true(
            "Prometheus to list an Alertmanager again after its reload",
            lambda: bool(http.get(f"{stack.prometheus_url}/api/v1/alertmanagers")
                         .json()["data"]["activeAlertmanagers"]))


@contextmanager
def alert_rules_edited(stack: Stack, edit: Callable[[Rule], Rule | None]) -> Iterator[None]:
    """Prometheus runs with ``edit`` applied to every rule (None drops it) until exit."""
    paths = Paths(stack.run_dir)
    rules = yaml.safe_load(paths.config(RULES_FILE).read_text())
    for group in rules["groups"]:
        group["rules"] = [e for e in (edit(r) for r in group["rules"]) if e is not None]
    write_atomic(paths.config(RULES_FILE), yaml.safe_dump(rules))
    reload_prometheus(stack)
    try:
        yield
    finally:
        render_run_configs(stack.topology, paths)
        reload_prometheus(stack)


def rendered_rules(stack: Stack) -> list[Rule]:
    groups = yaml.safe_load(Paths(stack.run_dir).config(RULES_FILE).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@contextmanager
def alert_rule_misspelled(stack: Stack, alert: str, metric: str) -> Iterator[None]:
    """The rule stays loaded but its expression names a metric nobody exports."""
    with alert_expr_replaced(stack, alert, metric, f"{metric}_typo"):
        yield


@contextmanager
def alert_expr_replaced(stack: Stack, alert: str, old: str, new: str,
                        reading: str = "") -> Iterator[None]:
    """``alert``'s rules (those whose expression reads ``reading``, when given) stay
    loaded with ``old`` replaced by ``new`` in their expressions."""
    def edited(rule: Rule) -> bool:
        return rule.get("alert") == alert and reading in str(rule["expr"])

    assert any(edited(r) and old in str(r["expr"]) for r in rendered_rules(stack)), \
        f"no {alert} rule reads {old!r}"

    def replace_in(rule: Rule) -> Rule:
        if not edited(rule):
            return rule
        return {**rule, "expr": str(rule["expr"]).replace(old, new)}
    with alert_rules_edited(stack, replace_in):
        yield


@contextmanager
def front_door_config_edited(stack: Stack, edit: Callable[[str], str]) -> Iterator[None]:
    """The front door restarted on ``edit`` of its rendered haproxy.cfg until exit."""
    paths = Paths(stack.run_dir)
    config = render("haproxy.cfg.j2", stack.topology)
    write_atomic(paths.config("haproxy.cfg"), edit(config))
    stack.restart(stack.topology.front_door.name)
    try:
        yield
    finally:
        render_run_configs(stack.topology, paths)
        stack.restart(stack.topology.front_door.name)


def without_checks(config: str) -> str:
    """haproxy.cfg with every server's health check dropped."""
    return re.sub(r" check$", "", config, flags=re.M)


def front_door_server_timeout(seconds: int) -> Callable[[str], str]:
    """haproxy.cfg whose front door waits ``seconds`` on a silent gateway."""
    def wait(config: str) -> str:
        edited, found = re.subn(r"^(\s*timeout server )\d+s$", rf"\g<1>{seconds}s", config,
                                flags=re.M)
        assert found, "no timeout server in the rendered haproxy.cfg"
        return edited
    return wait


def without_response_timeout_retries(config: str) -> str:
    """haproxy.cfg whose front door does not retry a request its gateway never answered."""
    edited, found = re.subn(r"^(\s*retry-on .*) response-timeout$", r"\g<1>", config, flags=re.M)
    assert found, "no retry-on response-timeout in the rendered haproxy.cfg"
    return edited


@contextmanager
def gateway_policy_changed(stack: Stack,
                           change: Callable[[GatewayPolicy], GatewayPolicy]) -> Iterator[None]:
    """Gateways restarted with ``change`` applied to their policy until exit."""
    normal = stack.topology
    stack.use_topology(replace(normal, gateway_policy=change(normal.gateway_policy)))
    try:
        restart_gateways(stack)
        yield
    finally:
        stack.use_topology(normal)
        restart_gateways(stack)


@contextmanager
def upgrade_policy_changed(stack: Stack,
                           change: Callable[[UpgradePolicy], UpgradePolicy]) -> Iterator[None]:
    """The stack's rolling upgrade runs with ``change`` applied to its procedure until exit
    (the procedure reads the stack file's ``rollout.upgrade`` when it runs)."""
    normal = stack.topology
    assert normal.rollout is not None, "the stack file has no rollout section"
    stack.use_topology(replace(normal, rollout=replace(
        normal.rollout, upgrade=change(normal.rollout.upgrade))))
    try:
        yield
    finally:
        stack.use_topology(normal)


@contextmanager
def fault_proxy_changed(stack: Stack, *, dead_peer_s: float) -> Iterator[None]:
    """The fault proxy restarted with another ``dead_peer_s`` until exit (its routes are
    populated again at each start)."""
    normal = stack.topology
    changed = replace(normal.fault_proxy, dead_peer_s=dead_peer_s)
    stack.use_topology(replace(normal, fault_proxy=changed))
    try:
        stack.restart(normal.fault_proxy.name)
        yield
    finally:
        stack.use_topology(normal)
        stack.restart(normal.fault_proxy.name)


def restart_gateways(stack: Stack) -> None:
    for gateway in stack.gateway_names:
        stack.restart(gateway)


def each_gateway(stack: Stack, verb: str, worker: str) -> None:
    for gateway in stack.gateway_names:
        httpx.post(f"{stack.gateway_url(gateway)}/{verb}", params={"url": worker},
                   timeout=30)


@contextmanager
def broken_after_steady(drill: ModuleType, faults: Sequence[FaultBase]) -> Iterator[None]:
    """``faults`` applied right after the drill's steady-state gate (which refuses a stack
    with toxics on it), reverted on exit whatever happens."""
    real_steady = drill.ensure_steady

    def steady_then_break(run: Drill) -> None:
        real_steady(run)
        for fault in faults:
            fault.apply()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(drill, "ensure_steady", steady_then_break)
        try:
            yield
        finally:
            for fault in faults:
                fault.revert()


FRONT_DOOR_REQUEST_ID_LINES = (r"^\s*http-request set-header X-Request-Id .*\n",
                               r"^\s*http-after-response set-header X-Request-Id .*\n")


def without_request_ids(config: str) -> str:
    """haproxy.cfg whose front door neither sets nor returns the stack's X-Request-Id
    (the client's header passes through untouched)."""
    for line in FRONT_DOOR_REQUEST_ID_LINES:
        config, found = re.subn(line, "", config, flags=re.M)
        assert found, f"no {line!r} in the rendered haproxy.cfg"
    return config


def checks_slowed(factor: int) -> Callable[[str], str]:
    """haproxy.cfg with the servers' check interval ``inter`` times ``factor``."""
    def slow(config: str) -> str:
        edited, found = re.subn(r"\binter (\d+)ms",
                                lambda m: f"inter {int(m.group(1)) * factor}ms", config)
        assert found, "no inter in the rendered haproxy.cfg"
        return edited
    return slow


@contextmanager
def supervisor_restart_off(stack: Stack, node: str) -> Iterator[None]:
    """The stack's supervisor no longer restarts ``node``'s kind (restart policy
    ``never``), applied live. On the process runtime (supervisord's
    ``autorestart=false``) ``node`` is stopped, supervisord re-reads its re-rendered
    program (``reloadConfig``) and starts it again under it; on the container runtime
    the engine's policy of ``node``'s container becomes ``no`` in place
    (``container.update``). On exit the shipped policy comes back the same way and
    ``node`` runs again, whether or not the drill left it dead."""
    normal = stack.topology
    never = RestartPolicy(policy="never")
    restarts = (replace(normal.restart, gateways=never) if node in stack.gateway_names
                else replace(normal.restart, front_door=never)
                if node == normal.front_door.name
                else replace(normal.restart, nodes=never))
    stack.use_topology(replace(normal, restart=restarts))
    engine = stack.runtime if isinstance(stack.runtime, ContainerRuntime) else None
    try:
        if engine is not None:
            assert engine.apply_restart_policy(node) == "no"
        else:
            stack.restart(node)
            assert supervisord_autorestart(stack, node) == "false"
        yield
    finally:
        stack.use_topology(normal)
        if engine is not None:
            assert engine.apply_restart_policy(node) == "unless-stopped"
            if not stack.is_running(node):
                stack.restart(node)
        else:
            stack.restart(node)
            assert supervisord_autorestart(stack, node) == "unexpected"


@contextmanager
def node_aborts_on_sigterm(stack: Stack, node: str) -> Iterator[None]:
    """``node`` runs with vLLM's default ``--shutdown-timeout 0``: SIGTERM aborts what it
    holds instead of draining it. Applied live as the restart policy is: ``node`` is
    restarted on its re-rendered program, and again on the shipped one at exit."""
    normal = stack.topology
    stack.use_topology(replace(normal, model=replace(normal.model, shutdown_timeout_s=0)))
    try:
        stack.restart(node)
        argv = shlex.split(supervisord_value(stack, node, "command"))
        assert argv[argv.index("--shutdown-timeout") + 1] == "0", argv
        yield
    finally:
        stack.use_topology(normal)
        stack.restart(node)


def supervisord_value(stack: Stack, program: str, key: str) -> str:
    """``key`` of ``program`` in the supervisord config the run's supervisord last re-read
    (the runtime re-renders and reloads it on every start)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(supervisord_config(Paths(stack.run_dir)).read_text())
    return config.get(f"program:{program}", key)


def supervisord_autorestart(stack: Stack, program: str) -> str:
    return supervisord_value(stack, program, "autorestart")


@contextmanager
def alert_for_stretched(stack: Stack, alert: str, for_: str) -> Iterator[None]:
    """``alert``'s rule keeps its expression but must hold for ``for_`` before firing."""
    assert any(r.get("alert") == alert for r in rendered_rules(stack)), f"no {alert} rule"

    def stretch(rule: Rule) -> Rule:
        return {**rule, "for": for_} if rule.get("alert") == alert else rule
    with alert_rules_edited(stack, stretch):
        yield
