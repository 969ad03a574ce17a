"""The timeout-spike drill turns red on a stack that cannot alert on, retry or explain
a slow node."""

from __future__ import annotations

from dataclasses import replace

from drills import test_timeout_spike
from tests.breakage.breaks import (
    alert_expr_replaced,
    alert_rule_misspelled,
    front_door_config_edited,
    gateway_policy_changed,
    without_request_ids,
)
from tests.breakage.sensitivity import Sensitivity


def test_fails_when_ttft_high_reads_a_misspelled_metric(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        "timeout_spike", test_timeout_spike.run_timeout_spike,
        lambda: alert_rule_misspelled(stack, "TTFTHigh",
                                      "llmdrill_client_ttft_seconds_bucket"),
        "TTFTHigh goes firing")


def test_an_alert_firing_without_the_fault_is_not_taken_for_its_effect(
        sensitivity: Sensitivity) -> None:
    """The users' TTFTHigh with its threshold at 0 fires on any traffic, the drill's
    steady load included: the drill holds the fault for it to go quiet, and it never
    does (INCONCLUSIVE, never passed: its firing proves nothing about the fault)."""
    stack = sensitivity.stack
    threshold = f") > {stack.topology.thresholds.ttft_p95_s:g}"
    sensitivity.expect_red(
        "timeout_spike", test_timeout_spike.run_timeout_spike,
        lambda: alert_expr_replaced(stack, "TTFTHigh", threshold, ") >= 0",
                                    reading="llmdrill_client_ttft_seconds_bucket"),
        'TTFTHigh\\{source="client"\\} is quiet before the fault: not proven')


def test_fails_when_the_gateways_do_not_retry(sensitivity: Sensitivity) -> None:
    """vllm-router with one attempt per request (what ``--disable-retries`` sets): the
    node's timeouts reach users as 500s, and only the client's retries save them."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "timeout_spike", test_timeout_spike.run_timeout_spike,
        lambda: gateway_policy_changed(stack, lambda p: replace(p, retry_max=1)),
        "the gateways retried around the node|5xx ratio")


def test_fails_when_the_front_door_sets_no_request_id(sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        "timeout_spike", test_timeout_spike.run_timeout_spike,
        lambda: front_door_config_edited(stack, without_request_ids),
        "every user got a success or the stack's clean error with its request id")
