"""The hot-swap drill turns red on a stack whose rollback leaves users on a bad canary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import yaml

from drills import test_hot_model_swap
from drills.catalogue import Drill
from harness.drill import Stack, set_canary_in_rotation
from harness.files import write_atomic
from harness.render.run_configs import render_run_configs
from harness.runs import Paths
from tests.breakage.breaks import each_gateway, restart_gateways
from tests.breakage.sensitivity import Sensitivity

ALERTMANAGER_FILE = "alertmanager.yml"
NOWHERE = "nowhere"


def slow_canary(drill: Drill) -> None:
    test_hot_model_swap.run_hot_swap(drill, "slow")


@contextmanager
def stray_canary_registration(stack: Stack) -> Iterator[None]:
    """A second deploy path registers the canary under another name for the same host;
    the rollback removes one registration and traffic keeps reaching the canary."""
    canary = stack.topology.canary
    assert canary is not None
    stray = f"http://localhost:{canary.proxy_port}"

    def register_twice(run: Drill, name: str, joined: bool) -> None:
        set_canary_in_rotation(run, name, joined)
        if joined:
            each_gateway(stack, "add_worker", stray)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(test_hot_model_swap, "set_canary_in_rotation", register_twice)
            yield
    finally:
        each_gateway(stack, "remove_worker", stray)
        # vllm-router keeps the health gauge of a removed worker (0: the canary is gone),
        # and GatewayBackendDown would fire on it forever; a restart forgets it.
        restart_gateways(stack)


def test_fails_when_a_stray_canary_registration_survives_rollback(
        sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red("hot_swap_slow", slow_canary,
                           lambda: stray_canary_registration(stack),
                           "traffic returns to the stable nodes only")


@contextmanager
def rollout_analysis_off(stack: Stack) -> Iterator[None]:
    """The rollout controller restarted with an hour between analysis steps: it still
    accepts canaries and answers for them, but never analyses, so never rolls back."""
    normal = stack.topology
    assert normal.rollout is not None, "the stack has no rollout controller"
    rollout = normal.rollout
    idle = replace(rollout, analysis=replace(rollout.analysis, interval_s=3600.0))
    stack.use_topology(replace(normal, rollout=idle))
    try:
        stack.restart(rollout.name)
        yield
    finally:
        stack.use_topology(normal)
        stack.restart(rollout.name)


def test_fails_when_the_rollout_controller_does_not_analyse(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red("hot_swap_slow", slow_canary, lambda: rollout_analysis_off(stack),
                           "the controller rolls back a slow canary")


def reload_alertmanager(stack: Stack) -> None:
    httpx.post(f"{stack.alertmanager_url}/-/reload", timeout=10).raise_for_status()


def alertmanager_config(stack: Stack) -> str:
    """The configuration Alertmanager runs now (its own word, not the file's)."""
    status = httpx.get(f"{stack.alertmanager_url}/api/v2/status", timeout=10)
    status.raise_for_status()
    return str(status.json()["config"]["original"])


def routed_nowhere(route: dict[str, Any]) -> dict[str, Any]:
    """``route`` and every route under it sent to the receiver that delivers nowhere."""
    return {**route, "receiver": NOWHERE,
            "routes": [routed_nowhere(r) for r in route.get("routes") or ()]}


@contextmanager
def alerts_delivered_nowhere(stack: Stack) -> Iterator[None]:
    """Every Alertmanager route sent to a receiver with no integration (alerts are
    grouped and "notified" to no one), until the shipped config is rendered back."""
    paths = Paths(stack.run_dir)
    config = yaml.safe_load(paths.config(ALERTMANAGER_FILE).read_text())
    config["route"] = routed_nowhere(config["route"])
    config["receivers"] = [*config["receivers"], {"name": NOWHERE}]
    write_atomic(paths.config(ALERTMANAGER_FILE), yaml.safe_dump(config))
    try:
        reload_alertmanager(stack)
        assert f"receiver: {NOWHERE}" in alertmanager_config(stack), "the reload did not take"
        yield
    finally:
        render_run_configs(stack.topology, paths)
        reload_alertmanager(stack)
        assert f"receiver: {NOWHERE}" not in alertmanager_config(stack)


def test_fails_when_alertmanager_routes_deliver_nowhere(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red("hot_swap_slow", slow_canary,
                           lambda: alerts_delivered_nowhere(stack),
                           "CanaryRolledBack delivered to")
