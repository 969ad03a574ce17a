"""A drill must be able to fail: each runs against a deliberately broken variant of the
real stack and must fail with a message naming the broken property. Every breakage is
reverted whatever happens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from types import ModuleType

import httpx
import pytest
import yaml

from drills import (
    test_cancel_storm,
    test_gateway_failover,
    test_hot_model_swap,
    test_node_restart,
    test_out_of_memory,
    test_timeout_spike,
)
from harness.drill.config import DrillsConfig
from harness.drill.run import DrillRun
from harness.errors import HarnessError
from harness.faults.base import FaultBase
from harness.faults.network import HoldUpstreamOnClientClose, HttpError
from harness.files import write_atomic
from harness.stack.process_runtime import ProcessRuntime
from harness.stack.render import RULES_FILE, render_run_configs
from harness.stack.stack import Stack
from harness.templates import render

pytestmark = pytest.mark.stack


def _reload_prometheus(stack: Stack) -> None:
    httpx.post(f"{stack.prometheus_url}/-/reload", timeout=10).raise_for_status()


Rule = dict[str, object]


@contextmanager
def alert_rules_edited(stack: Stack, edit: Callable[[Rule], Rule | None]) -> Iterator[None]:
    """Prometheus runs with ``edit`` applied to every rule (None drops it) until exit."""
    paths = stack.runtime.paths  # type: ignore[attr-defined]
    rules = yaml.safe_load(paths.config(RULES_FILE).read_text())
    for group in rules["groups"]:
        group["rules"] = [e for e in (edit(r) for r in group["rules"]) if e is not None]
    write_atomic(paths.config(RULES_FILE), yaml.safe_dump(rules))
    _reload_prometheus(stack)
    try:
        yield
    finally:
        render_run_configs(stack.topology, paths)
        _reload_prometheus(stack)


def alert_rule_misspelled(stack: Stack, alert: str, metric: str) -> AbstractContextManager[None]:
    """The rule stays loaded but its expression names a metric nobody exports."""
    rules = _rendered_rules(stack)
    assert any(r.get("alert") == alert and metric in str(r["expr"]) for r in rules), \
        f"no {alert} rule reads {metric}"

    def misspell(rule: Rule) -> Rule:
        if rule.get("alert") != alert:
            return rule
        return {**rule, "expr": str(rule["expr"]).replace(metric, f"{metric}_typo")}
    return alert_rules_edited(stack, misspell)


def _rendered_rules(stack: Stack) -> list[Rule]:
    paths = stack.runtime.paths  # type: ignore[attr-defined]
    groups = yaml.safe_load(paths.config(RULES_FILE).read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@contextmanager
def front_door_checks_off(stack: Stack) -> Iterator[None]:
    paths = stack.runtime.paths  # type: ignore[attr-defined]
    config = render("haproxy.cfg.j2", stack.topology)
    write_atomic(paths.config("haproxy.cfg"), re.sub(r" check$", "", config, flags=re.M))
    stack.restart(stack.topology.front_door.name)
    try:
        yield
    finally:
        render_run_configs(stack.topology, paths)
        stack.restart(stack.topology.front_door.name)


def _expect_failure(stack: Stack, config: DrillsConfig, name: str,
                    drill: Callable[[DrillRun], None], names: str) -> None:
    with pytest.raises(HarnessError, match=names), DrillRun.open(name, stack, config) as run:
        drill(run)


@dataclass(frozen=True)
class MisspelledAlert:
    drill: Callable[[DrillRun], None]
    alert: str
    metric: str  # what the rule reads; the breakage adds a typo to it
    fails_on: str


@pytest.mark.parametrize("case", [
    MisspelledAlert(test_timeout_spike.run_timeout_spike, "TTFTHigh",
                    "llmdrill_client_ttft_seconds_bucket", "TTFTHigh goes firing"),
    MisspelledAlert(test_out_of_memory.run_oom_kill, "NodeOOMKilled",
                    "llmdrill_node_oom_kills_total", "NodeOOMKilled goes firing"),
], ids=["timeout_spike", "oom_kill"])
def test_drill_fails_when_its_alert_reads_a_misspelled_metric(
        stack: Stack, drills_config: DrillsConfig, case: MisspelledAlert) -> None:
    name = f"broken_{case.drill.__name__.removeprefix('run_')}"
    with alert_rule_misspelled(stack, case.alert, case.metric):
        _expect_failure(stack, drills_config, name, case.drill, case.fails_on)


def test_gateway_failover_fails_without_front_door_health_checks(
        stack: Stack, drills_config: DrillsConfig) -> None:
    with front_door_checks_off(stack):
        _expect_failure(stack, drills_config, "broken_gateway_failover",
                        lambda run: test_gateway_failover.run_gateway_failover(run, "kill"),
                        "front door takes gateway-a out")


@contextmanager
def broken_after_steady(monkeypatch: pytest.MonkeyPatch, drill: ModuleType,
                        faults: Sequence[FaultBase]) -> Iterator[None]:
    """Apply ``faults`` right after the drill's steady-state gate (which refuses a stack
    with toxics on it); they revert whatever happens."""
    real_steady = drill.ensure_steady

    def steady_then_break(run: DrillRun) -> None:
        real_steady(run)
        for fault in faults:
            fault.apply()

    monkeypatch.setattr(drill, "ensure_steady", steady_then_break)
    try:
        yield
    finally:
        for fault in faults:
            fault.revert()


def test_cancel_storm_fails_when_disconnects_are_not_propagated(
        stack: Stack, drills_config: DrillsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    holds = [HoldUpstreamOnClientClose(stack.fault_proxy, gw) for gw in stack.gateway_names]
    with broken_after_steady(monkeypatch, test_cancel_storm, holds):
        _expect_failure(stack, drills_config, "broken_cancel_storm",
                        test_cancel_storm.run_cancel_storm,
                        "KV cache released|leaked connections")


def test_oom_caps_fail_when_a_proxy_masks_the_nodes_400(
        stack: Stack, drills_config: DrillsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """An intermediary between gateways and nodes answers completions with a bare 502:
    the node's 400 and its message never reach the user."""
    masks = [HttpError(stack.fault_proxy, node, status=502, path_prefix="/v1/")
             for node in stack.node_names]
    with broken_after_steady(monkeypatch, test_out_of_memory, masks):
        _expect_failure(stack, drills_config, "broken_oom_caps",
                        test_out_of_memory.run_oom_caps,
                        "an oversized prompt gets a 400 with a useful message")


@contextmanager
def gateway_health_checks_off(stack: Stack) -> Iterator[None]:
    """Gateways restarted with an hour between health checks: a dead node stays listed."""
    runtime = stack.runtime
    assert isinstance(runtime, ProcessRuntime), "needs the process runtime"
    normal = runtime.topology
    policy = replace(normal.gateway_policy, health_check_interval_s=3600)
    runtime.use_topology(replace(normal, gateway_policy=policy))
    try:
        restart_gateways(stack)
        yield
    finally:
        runtime.use_topology(normal)
        restart_gateways(stack)


def restart_gateways(stack: Stack) -> None:
    for gateway in stack.gateway_names:
        stack.restart(gateway)


def test_node_restart_fails_without_gateway_health_checks(
        stack: Stack, drills_config: DrillsConfig) -> None:
    with gateway_health_checks_off(stack):
        _expect_failure(stack, drills_config, "broken_node_restart",
                        lambda run: test_node_restart.run_node_restart(run, graceful=False),
                        "every gateway marks the node down")


def test_hot_swap_fails_when_a_stray_canary_registration_survives_rollback(
        stack: Stack, drills_config: DrillsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second deploy path registered the canary under another name for the same host;
    the rollback removes one registration and traffic keeps reaching the canary."""
    canary = stack.topology.canary
    assert canary is not None
    stray = f"http://localhost:{canary.proxy_port}"
    register = test_hot_model_swap.set_canary_in_rotation

    def register_twice(run: DrillRun, name: str, joined: bool) -> None:
        register(run, name, joined)
        if joined:
            _each_gateway(stack, "add_worker", stray)

    monkeypatch.setattr(test_hot_model_swap, "set_canary_in_rotation", register_twice)
    try:
        _expect_failure(stack, drills_config, "broken_hot_swap",
                        lambda run: test_hot_model_swap.run_hot_swap(run, "slow"),
                        "traffic returns to the stable nodes only")
    finally:
        _each_gateway(stack, "remove_worker", stray)
        # vllm-router keeps the health gauge of a removed worker (0: the canary is gone),
        # and GatewayBackendDown would fire on it forever; a restart forgets it.
        restart_gateways(stack)


def _each_gateway(stack: Stack, verb: str, worker: str) -> None:
    for gateway in stack.gateway_names:
        httpx.post(f"{stack.gateway_url(gateway)}/{verb}", params={"url": worker}, timeout=30)
