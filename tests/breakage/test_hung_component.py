"""The hung-component drill turns red, engine hung: on gateways that check vLLM's own
``/health`` (200 while the engine hangs: the node stays in rotation), on a NodeStalled
alert that reads a metric vLLM does not export (nobody hears of the hang), and on gateways
whose request timeout is longer than the hang (users wait on the hung engine until it comes
back). Whole node hung: on gateways that no longer check their workers (the node stays in
rotation) and on a NodeDown that waits ten minutes (nobody hears of the hang)."""

from __future__ import annotations

from dataclasses import replace

from drills import test_hung_component
from drills.test_hung_component import ENGINE_HANG, NODE_HANG, VICTIM
from tests.breakage.breaks import (
    alert_for_stretched,
    alert_rule_misspelled,
    gateway_policy_changed,
)
from tests.breakage.sensitivity import Sensitivity

#: Longer than the drill holds the hang: no gateway gives up on the hung engine.
PATIENT_GATEWAYS_S = 600
OUT_OF_ROTATION = f"every gateway takes {VICTIM} out of rotation"


def test_fails_when_the_gateways_check_vllms_own_health(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        ENGINE_HANG.drill, test_hung_component.run_hung_engine,
        lambda: gateway_policy_changed(
            stack, lambda policy: replace(policy, health_check_endpoint="/health")),
        OUT_OF_ROTATION)


def test_fails_when_node_stalled_reads_a_misspelled_metric(sensitivity: Sensitivity) -> None:
    sensitivity.expect_red(
        ENGINE_HANG.drill, test_hung_component.run_hung_engine,
        lambda: alert_rule_misspelled(sensitivity.stack, "NodeStalled",
                                      "vllm:generation_tokens_total"),
        "NodeStalled goes firing")


def test_fails_when_the_gateways_wait_on_the_hung_engine(sensitivity: Sensitivity) -> None:
    """The gateways' request timeout raised past the hang: nothing ends the waits."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        ENGINE_HANG.drill, test_hung_component.run_hung_engine,
        lambda: gateway_policy_changed(
            stack, lambda policy: replace(policy, request_timeout_s=PATIENT_GATEWAYS_S)),
        "no request waits on the hung node past the bound")


def test_a_hung_node_fails_without_gateway_health_checks(sensitivity: Sensitivity) -> None:
    """An hour between the gateways' checks: the hung node stays listed."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        NODE_HANG.drill, test_hung_component.run_hung_node,
        lambda: gateway_policy_changed(
            stack, lambda policy: replace(policy, health_check_interval_s=3600)),
        OUT_OF_ROTATION)


def test_a_hung_node_fails_when_node_down_waits_ten_minutes(sensitivity: Sensitivity) -> None:
    sensitivity.expect_red(
        NODE_HANG.drill, test_hung_component.run_hung_node,
        lambda: alert_for_stretched(sensitivity.stack, "NodeDown", "10m"),
        "NodeDown goes firing")
