"""The out-of-memory drills turn red on a stack that hides a node's refusal, never
alerts on a kernel OOM kill, or does not restart the node the kernel killed."""

from __future__ import annotations

from drills import test_out_of_memory
from harness.faults.network import HttpError
from tests.breakage.breaks import (
    alert_rule_misspelled,
    broken_after_steady,
    supervisor_restart_off,
)
from tests.breakage.sensitivity import Sensitivity


def test_kill_fails_when_node_oom_killed_reads_a_misspelled_metric(
        sensitivity: Sensitivity) -> None:
    stack = sensitivity.stack
    sensitivity.expect_red(
        "oom_kill", test_out_of_memory.run_oom_kill,
        lambda: alert_rule_misspelled(stack, "NodeOOMKilled",
                                      "llmdrill_node_oom_kills_total"),
        "NodeOOMKilled goes firing")


def test_caps_fail_when_a_proxy_masks_the_nodes_400(sensitivity: Sensitivity) -> None:
    """An intermediary between gateways and nodes answers completions with a bare 502:
    the node's 400 and its message never reach the user."""
    stack = sensitivity.stack
    masks = [HttpError(stack.fault_proxy, node, status=502, path_prefix="/v1/")
             for node in stack.node_names]
    sensitivity.expect_red(
        "oom_caps", test_out_of_memory.run_oom_caps,
        lambda: broken_after_steady(test_out_of_memory, masks),
        "an oversized prompt gets a 400 with a useful message")


def test_kill_fails_when_the_supervisor_does_not_restart(sensitivity: Sensitivity) -> None:
    """Restart policy ``never`` for nodes: the OOM-killed node stays dead."""
    stack = sensitivity.stack
    sensitivity.expect_red(
        "oom_kill", test_out_of_memory.run_oom_kill,
        lambda: supervisor_restart_off(stack, test_out_of_memory.VICTIM),
        f"the supervisor restarts {test_out_of_memory.VICTIM}")
