"""The hung-component drill turns red, engine hung: on gateways that check vLLM's own
``/health`` (200 while the engine hangs: the node stays in rotation), on a NodeStalled
alert that reads a metric vLLM does not export (nobody hears of the hang), and on gateways
whose request timeout is longer than the hang (users wait on the hung engine until it comes
back). Whole node hung: on gateways that no longer check their workers (the node stays in
rotation) and on a NodeDown that counts only refused scrapes (a hung node refuses none). A gateway
hung: on a front door that no longer checks its gateways (the hung gateway stays in
rotation) and on a front door that does not retry what the hung gateway never answered
(those users get a 504)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from drills import test_hung_component
from drills.test_hung_component import ENGINE_HANG, GATEWAY_HANG, HUNG_GATEWAY, NODE_HANG, VICTIM
from harness.stack.stack import Stack
from tests.breakage.breaks import (
    alert_expr_replaced,
    alert_rule_misspelled,
    front_door_config_edited,
    front_door_server_timeout,
    gateway_policy_changed,
    without_checks,
    without_response_timeout_retries,
)
from tests.breakage.sensitivity import Sensitivity

#: Longer than the drill holds the hang: no gateway gives up on the hung engine.
PATIENT_GATEWAYS_S = 600
OUT_OF_ROTATION = f"every gateway takes {VICTIM} out of rotation"
#: NodeDown's clause for a node that answers no scrape at all (they time out, not fail).
NODE_HUNG_CLAUSE = "max_over_time(up{job=\"vllm\"}[30s]) == 0"


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
    """The gateways' request timeout raised past the hang, and the front door's with it
    (it waits on a silent gateway a little longer than the gateways' timeout): nothing ends
    the waits."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        ENGINE_HANG.drill, test_hung_component.run_hung_engine,
        lambda: patient_stack(stack), f"no request waits on the hung {VICTIM} past the bound")


@contextmanager
def patient_stack(stack: Stack) -> Iterator[None]:
    """Gateways and front door that wait on a request longer than the drill holds the
    hang. The front door is restored after the gateways (it renders from their policy)."""
    with front_door_config_edited(stack, front_door_server_timeout(PATIENT_GATEWAYS_S)), \
            gateway_policy_changed(
                stack, lambda policy: replace(policy, request_timeout_s=PATIENT_GATEWAYS_S)):
        yield


def test_a_hung_node_fails_without_gateway_health_checks(sensitivity: Sensitivity) -> None:
    """An hour between the gateways' checks: the hung node stays listed."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        NODE_HANG.drill, test_hung_component.run_hung_node,
        lambda: gateway_policy_changed(
            stack, lambda policy: replace(policy, health_check_interval_s=3600)),
        OUT_OF_ROTATION)


def test_a_hung_node_fails_when_node_down_needs_refused_scrapes(sensitivity: Sensitivity) -> None:
    """NodeDown without its clause for scrapes that time out: a hung node refuses none."""
    sensitivity.expect_red(
        NODE_HANG.drill, test_hung_component.run_hung_node,
        lambda: alert_expr_replaced(sensitivity.stack, "NodeDown", NODE_HUNG_CLAUSE,
                                    "scrape_duration_seconds{job=\"vllm\"} < 0"),
        "NodeDown goes firing")


def test_a_hung_gateway_fails_without_front_door_health_checks(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        GATEWAY_HANG.drill, test_hung_component.run_hung_gateway,
        lambda: front_door_config_edited(stack, without_checks),
        f"the front door takes {HUNG_GATEWAY} out of rotation")


def test_a_hung_gateway_fails_when_the_front_door_does_not_retry_what_it_never_answered(
        sensitivity: Sensitivity) -> None:
    """What the front door sent the hung gateway before marking it DOWN ends in a 504 at
    the front door's timeout instead of being retried on the other gateway."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        GATEWAY_HANG.drill, test_hung_component.run_hung_gateway,
        lambda: front_door_config_edited(stack, without_response_timeout_retries),
        # with admission control at most its slots' worth are lost (within the budget)
        f"requests lost to the hang are bounded|the front door retries elsewhere what the "
        f"hung {HUNG_GATEWAY} never answered")
