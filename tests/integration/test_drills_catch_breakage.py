"""A drill must be able to fail: each runs against a deliberately broken variant of the
real stack and must fail with a message naming the broken property. Every breakage is
reverted whatever happens."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import yaml

from drills import test_cancel_storm, test_gateway_failover, test_timeout_spike
from harness.drill.config import DrillsConfig
from harness.drill.run import DrillRun
from harness.errors import HarnessError
from harness.faults.network import HoldUpstreamOnClientClose
from harness.files import write_atomic
from harness.stack.render import RULES_FILE, render_run_configs
from harness.stack.stack import Stack
from harness.templates import render

pytestmark = pytest.mark.stack


def _reload_prometheus(stack: Stack) -> None:
    httpx.post(f"{stack.prometheus_url}/-/reload", timeout=10).raise_for_status()


@contextmanager
def alert_rule_removed(stack: Stack, alert: str) -> Iterator[None]:
    paths = stack.runtime.paths  # type: ignore[attr-defined]
    rules = yaml.safe_load(paths.config(RULES_FILE).read_text())
    for group in rules["groups"]:
        group["rules"] = [r for r in group["rules"] if r.get("alert") != alert]
    write_atomic(paths.config(RULES_FILE), yaml.safe_dump(rules))
    _reload_prometheus(stack)
    try:
        yield
    finally:
        render_run_configs(stack.topology, paths)
        _reload_prometheus(stack)


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


def test_timeout_spike_fails_without_its_alert_rule(stack: Stack,
                                                    drills_config: DrillsConfig) -> None:
    with alert_rule_removed(stack, "TTFTHigh"):
        _expect_failure(stack, drills_config, "broken_timeout_spike",
                        test_timeout_spike.run_timeout_spike, "TTFTHigh")


def test_gateway_failover_fails_without_front_door_health_checks(
        stack: Stack, drills_config: DrillsConfig) -> None:
    with front_door_checks_off(stack):
        _expect_failure(stack, drills_config, "broken_gateway_failover",
                        lambda run: test_gateway_failover.run_gateway_failover(run, "kill"),
                        "front door takes gateway-a out")


def test_cancel_storm_fails_when_disconnects_are_not_propagated(
        stack: Stack, drills_config: DrillsConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    holds = [HoldUpstreamOnClientClose(stack.fault_proxy, gw) for gw in stack.gateway_names]
    real_steady = test_cancel_storm.ensure_steady

    def steady_then_break(run: DrillRun) -> None:
        real_steady(run)
        for hold in holds:
            hold.apply()

    monkeypatch.setattr(test_cancel_storm, "ensure_steady", steady_then_break)
    try:
        _expect_failure(stack, drills_config, "broken_cancel_storm",
                        test_cancel_storm.run_cancel_storm,
                        "KV cache released|leaked connections")
    finally:
        for hold in holds:
            hold.revert()
