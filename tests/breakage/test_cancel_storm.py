"""The cancel-storm drill turns red on a stack that keeps generating for users who left."""

from __future__ import annotations

from dataclasses import replace

from drills import test_cancel_storm
from drills.catalogue import DrillsConfig
from harness.faults.network import HoldUpstreamOnClientClose
from tests.breakage.breaks import broken_after_steady
from tests.breakage.sensitivity import Sensitivity

#: What a stack that keeps generating for users who left fails on.
HELD_STREAMS_FAIL_ON = f"{test_cancel_storm.ENGINES_ABORTED}|every stream was opened"


def one_wave(config: DrillsConfig) -> DrillsConfig:
    """The broken storm runs one wave of the three: its streams run to their end, so each
    wave takes minutes; one wave is already 100 streams the engines must abort."""
    return replace(config, cancel_storm=replace(config.cancel_storm, waves=1))


def test_fails_when_disconnects_are_not_propagated(sensitivity: Sensitivity) -> None:
    """Between the front door and the gateways, an intermediary keeps each upstream open
    after its client left: the gateways never see the disconnect."""
    stack = sensitivity.stack
    holds = [HoldUpstreamOnClientClose(stack.fault_proxy, gw) for gw in stack.gateway_names]
    sensitivity.expect_red(
        "cancel_storm", test_cancel_storm.run_cancel_storm,
        lambda: broken_after_steady(test_cancel_storm, holds),
        # Held streams keep generating: on a loaded host the storm cannot even open its
        # streams in its window before the aborts are judged, or they wait for their first
        # chunks holding the front door's slots and it turns many away (55-70 of 100): the
        # 30-45 it admitted and the client abandoned are judged.
        HELD_STREAMS_FAIL_ON, one_wave)


def test_fails_when_the_engines_never_see_the_disconnects(sensitivity: Sensitivity) -> None:
    """The front door and the gateways propagate every disconnect, but a sidecar between
    the gateways and vLLM (the nodes' proxy routes) keeps the engine's connection open:
    vLLM runs every stream to its end instead of aborting. KV may still come back in time
    on a fast model; the engines' own accounting shows it. (Half of the streams held is
    within a healthy stack's spread on a loaded host: a healthy node already finishes
    half of them before the disconnect arrives.)"""
    stack = sensitivity.stack
    holds = [HoldUpstreamOnClientClose(stack.fault_proxy, node) for node in stack.node_names]
    sensitivity.expect_red(
        "cancel_storm", test_cancel_storm.run_cancel_storm,
        lambda: broken_after_steady(test_cancel_storm, holds),
        # Held streams keep generating and fill the nodes: the storm's own streams may
        # then fail before the aborts are judged (seen: 4 of 100 answered 5xx), or be shed.
        HELD_STREAMS_FAIL_ON, one_wave)
