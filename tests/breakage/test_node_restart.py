"""The node-restart drill turns red on gateways that keep routing to a dead node, on a
supervisor that does not restart it, on a NodeDown alert too slow to fire, and (SIGTERM)
on a node that aborts what it holds instead of draining it."""

from __future__ import annotations

import re
from dataclasses import replace

from drills import test_node_restart
from drills.catalogue import Drill
from drills.test_node_restart import ABORTS_NOTHING_HELD
from tests.breakage.breaks import (
    alert_for_stretched,
    gateway_policy_changed,
    node_aborts_on_sigterm,
    supervisor_restart_off,
)
from tests.breakage.sensitivity import Sensitivity


def kill_node(drill: Drill) -> None:
    test_node_restart.run_node_restart(drill, graceful=False)


def terminate_node(drill: Drill) -> None:
    test_node_restart.run_node_restart(drill, graceful=True)


def test_sigterm_fails_when_the_node_aborts_instead_of_draining(
        sensitivity: Sensitivity) -> None:
    """vLLM's default ``--shutdown-timeout 0`` on the victim: SIGTERM aborts its requests
    (a 200 stream ending in ``finish_reason: abort``, which users see as a lost answer;
    one that had sent nothing yet the gateways retry elsewhere, and only the node's own
    log shows it dropped)."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "node_restart_sigterm", terminate_node,
        lambda: node_aborts_on_sigterm(stack, test_node_restart.VICTIM),
        f"requests in flight at SIGTERM complete|{re.escape(ABORTS_NOTHING_HELD)}")


def test_fails_without_gateway_health_checks(sensitivity: Sensitivity) -> None:
    """Gateways with an hour between health checks: a dead node stays listed."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "node_restart_sigkill", kill_node,
        lambda: gateway_policy_changed(
            stack, lambda policy: replace(policy, health_check_interval_s=3600)),
        "every gateway marks the node down")


def test_fails_when_the_supervisor_does_not_restart(sensitivity: Sensitivity) -> None:
    """Restart policy ``never`` for nodes (supervisord's autorestart=false): the killed
    node stays dead; the drill must not bring it back itself."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "node_restart_sigkill", kill_node,
        lambda: supervisor_restart_off(stack, test_node_restart.VICTIM),
        f"the supervisor restarts {test_node_restart.VICTIM}")


def test_fails_when_node_down_waits_ten_minutes(sensitivity: Sensitivity) -> None:
    """NodeDown's ``for:`` stretched to 10 minutes: the node is back long before it
    would fire, so nobody is told it was down."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "node_restart_sigkill", kill_node,
        lambda: alert_for_stretched(stack, "NodeDown", "10m"),
        "NodeDown goes firing")
