"""The stack's rolling upgrade (:mod:`harness.rollout.upgrade`) run on a drill's stack, and
what a node says it serves.

The procedure's steps go through the stack's own parts: the gateways' worker API, the
runtime's supervisor (stop, start on the new revision), the node's own API (warm-up),
Alertmanager's silences.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePath

import httpx

from harness.clients.alertmanager import AlertmanagerClient
from harness.clock import SystemClock
from harness.drill.run import DrillRun
from harness.errors import Unreachable
from harness.rollout.gateways import Gateways
from harness.rollout.upgrade import RollingUpgrade, UpgradePlan
from harness.stack.stack import Stack
from harness.topology import Topology, UpgradePolicy


def with_revision(topology: Topology, node: str, revision: str) -> Topology:
    """``topology`` with ``node`` serving ``revision``."""
    nodes = tuple(replace(n, revision=revision) if n.name == node else n
                  for n in topology.nodes)
    return replace(topology, nodes=nodes)


@dataclass(frozen=True)
class StackFleet:
    """The stack's nodes as the upgrade procedure drives them."""

    stack: Stack

    def worker_url(self, node: str) -> str:
        return self.stack.node_proxied_url(node)

    def node_url(self, node: str) -> str:
        return self.stack.node_url(node)

    def stop(self, node: str, grace_s: float) -> None:
        if grace_s == 0:
            self.stack.kill(node)
        else:
            self.stack.stop(node, grace_s)

    def start_on(self, node: str, revision: str) -> None:
        self.stack.use_topology(with_revision(self.stack.topology, node, revision))
        self.stack.start(node)

    def wait_ready(self, node: str, within: float) -> float:
        return self.stack.wait_ready(node, within)


def upgrader(drill: DrillRun) -> RollingUpgrade:
    """The stack's rolling upgrade, driving the drill's stack."""
    stack = drill.stack
    gateways = Gateways([stack.gateway_url(g) for g in stack.gateway_names], drill.http,
                        SystemClock())
    return RollingUpgrade(StackFleet(stack), gateways, drill.http,
                          alertmanager=AlertmanagerClient(stack.alertmanager_url, drill.http))


def upgrade_plan(drill: DrillRun, revision: str) -> UpgradePlan:
    """To ``revision``, as the stack file's ``rollout.upgrade`` says."""
    rollout = drill.stack.topology.rollout
    policy = rollout.upgrade if rollout is not None else UpgradePolicy()
    return UpgradePlan(revision, drill.stack.model, policy)


def served_model_dir(drill: DrillRun, node: str) -> str:
    """The name of the model directory the node says it serves (``/v1/models``' root):
    ``<revision>-<hash of its weights>``."""
    url = drill.stack.node_url(node) + "/v1/models"
    try:
        root = drill.http.get(url, timeout=5.0).json()["data"][0]["root"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise Unreachable(url, "a model list with its root", str(exc)) from exc
    return PurePath(str(root)).name
