"""The rolling-upgrade drill turns red on an upgrade procedure that restarts each node in
place (no drain, killed at once: its users' requests are cut), on one that never puts
an upgraded node back in the gateways, and on one that does not silence the alert its
planned restart raises (on-call paged)."""

from __future__ import annotations

import re
from dataclasses import replace

from drills import test_rolling_upgrade
from drills.catalogue import DrillsConfig
from tests.breakage.breaks import upgrade_policy_changed
from tests.breakage.sensitivity import Sensitivity

DRILL = "rolling_upgrade"


def one_node(config: DrillsConfig) -> DrillsConfig:
    """The broken upgrade takes node1 only: its users' requests are cut on the first node
    the procedure kills, and each node costs about a minute (and another to take back)."""
    return replace(config, rolling_upgrade=replace(config.rolling_upgrade, nodes=1))


#: A node killed while the gateways still route to it: a user's stream it was sending is
#: cut, or, when the kill came before its first byte, the gateways retried it elsewhere
#: (the user never knew) and each saw the node die: GatewayBackendDown, which a drained
#: node never raises (a CI run: 0 of 25 cut, red on the alert).
KILLED_IN_PLACE = (f"{re.escape(test_rolling_upgrade.NO_FAILED)}"
                   "|no unexpected alerts: GatewayBackendDown")


def test_fails_when_nodes_are_killed_in_place(sensitivity: Sensitivity) -> None:
    sensitivity.expect_red(
        DRILL, test_rolling_upgrade.run_rolling_upgrade,
        lambda: upgrade_policy_changed(sensitivity.stack, lambda policy: replace(
            policy, drain=False, finish_in_flight=False, stop_grace_s=0)),
        KILLED_IN_PLACE, one_node)


def test_fails_when_upgraded_nodes_are_not_put_back(sensitivity: Sensitivity) -> None:
    """The procedure leaves each upgraded node for the gateways to find again; vllm-router
    never takes back a worker it was told to remove: the fleet runs on what was not
    upgraded yet, then on nothing."""
    sensitivity.expect_red(
        DRILL, test_rolling_upgrade.run_rolling_upgrade,
        lambda: upgrade_policy_changed(sensitivity.stack, lambda policy: replace(
            policy, rejoin=False)),
        test_rolling_upgrade.ROUTED_AGAIN, one_node)


def test_fails_when_the_planned_restart_pages_on_call(sensitivity: Sensitivity) -> None:
    """The procedure silences nothing: node1 is down for its restart (about 25 s) past
    NodeDown's ``for:`` (5 s), and Alertmanager delivers it to the critical receiver."""
    sensitivity.expect_red(
        DRILL, test_rolling_upgrade.run_rolling_upgrade,
        lambda: upgrade_policy_changed(sensitivity.stack, lambda policy: replace(
            policy, silence=())),
        re.escape(test_rolling_upgrade.NOT_PAGED), one_node)
