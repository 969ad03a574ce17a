"""The gateway-failover drill turns red on a front door that cannot take an unreachable
gateway out in time, and on a supervisor that does not bring a killed one back."""

from __future__ import annotations

from drills import test_gateway_failover
from drills.catalogue import Drill
from tests.breakage.breaks import (
    checks_slowed,
    front_door_config_edited,
    supervisor_restart_off,
    without_checks,
)
from tests.breakage.sensitivity import Sensitivity

SLOWER = 5  # the front door's check interval, this many times the stack's


def kill_gateway_a(drill: Drill) -> None:
    test_gateway_failover.run_gateway_failover(drill, "kill")


def cut_gateway_a(drill: Drill) -> None:
    test_gateway_failover.run_gateway_failover(drill, "cut")


def test_fails_without_front_door_health_checks(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        "gateway_failover_cut", cut_gateway_a,
        lambda: front_door_config_edited(stack, without_checks),
        "front door takes gateway-a out")


def test_fails_when_front_door_checks_are_too_slow_for_the_switch_budget(
        sensitivity: Sensitivity) -> None:
    """inter x 5: the front door still takes the gateway out, after ~4x its budget."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "gateway_failover_cut", cut_gateway_a,
        lambda: front_door_config_edited(stack, checks_slowed(SLOWER)),
        "front door takes gateway-a out within its check budget")


def test_kill_fails_when_the_supervisor_does_not_restart_the_gateway(
        sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        "gateway_failover_kill", kill_gateway_a,
        lambda: supervisor_restart_off(stack, test_gateway_failover.VICTIM),
        "the supervisor restarts gateway-a")
