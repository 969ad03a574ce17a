"""The node-partition drill turns red on gateways that keep a cut-off node in rotation,
on a proxy that holds the gateways' requests to a dead path (as the real Toxiproxy, and
vllm-router alone, do), and on a GatewayBackendDown alert too slow to tell anyone
(container runtime only: the process runtime has no partitions, and the drill skips
there)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from drills import test_node_partition
from harness.stack.runtime import Capability
from harness.stack.stack import Stack
from tests.breakage.breaks import (
    alert_for_stretched,
    fault_proxy_changed,
    gateway_policy_changed,
)
from tests.breakage.sensitivity import Sensitivity

VICTIM = test_node_partition.VICTIM


@pytest.fixture(autouse=True)
def partitions(stack: Stack) -> None:
    if Capability.NETWORK_PARTITION not in stack.capabilities:
        pytest.skip(f"the {stack.runtime.name} runtime cannot cut a node off the network")


def test_fails_without_gateway_health_checks(sensitivity: Sensitivity) -> None:
    """Gateways with an hour between health checks: the cut-off node stays listed."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "node_partition", test_node_partition.run_node_partition,
        lambda: gateway_policy_changed(
            stack, lambda policy: replace(policy, health_check_interval_s=3600)),
        f"every gateway takes {VICTIM} out of rotation")


def test_fails_when_gateway_backend_down_waits_ten_minutes(
        sensitivity: Sensitivity) -> None:
    """GatewayBackendDown's ``for:`` stretched to 10 minutes: the node is healed long
    before it would fire, so nobody hears the gateways lost it."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "node_partition", test_node_partition.run_node_partition,
        lambda: alert_for_stretched(stack, "GatewayBackendDown", "10m"),
        "GatewayBackendDown goes firing")


def test_fails_when_the_proxy_holds_requests_to_a_dead_path(sensitivity: Sensitivity) -> None:
    """The fault proxy restarted with ``dead_peer_s: 0``: a request the gateways sent the
    cut-off node waits until the gateway's own request timeout (60 s)."""
    sensitivity.expect_red(
        "node_partition", test_node_partition.run_node_partition,
        lambda: fault_proxy_changed(sensitivity.stack, dead_peer_s=0),
        "no request waits on the cut-off node past the bound")
