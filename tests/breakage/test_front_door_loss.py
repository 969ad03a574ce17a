"""The front-door-loss drill turns red on a stack whose supervisor leaves a killed front
door dead, and on one whose alert reads a metric HAProxy does not export."""

from __future__ import annotations

from drills import test_front_door_loss
from drills.catalogue import Drill
from tests.breakage.breaks import alert_rule_misspelled, supervisor_restart_off
from tests.breakage.sensitivity import Sensitivity


def front_door(sensitivity: Sensitivity) -> str:
    return sensitivity.stack.topology.front_door.name


def lose_the_front_door(drill: Drill) -> None:
    test_front_door_loss.run_front_door_loss(drill)


def test_fails_when_the_supervisor_does_not_restart_the_front_door(
        sensitivity: Sensitivity) -> None:
    """Restart policy ``never`` for the front door: killed, it stays dead."""
    name = front_door(sensitivity)
    sensitivity.expect_red(
        "front_door_loss", lose_the_front_door,
        lambda: supervisor_restart_off(sensitivity.stack, name),
        f"the supervisor restarts {name}")


def test_fails_when_front_door_restarted_reads_a_misspelled_metric(
        sensitivity: Sensitivity) -> None:
    sensitivity.expect_red(
        "front_door_loss", lose_the_front_door,
        lambda: alert_rule_misspelled(sensitivity.stack, "FrontDoorRestarted",
                                      "haproxy_process_uptime_seconds"),
        "FrontDoorRestarted goes firing")
