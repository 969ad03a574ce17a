"""Alerting on the real stack: a killed node raises NodeDown through the whole chain.

kill -> Prometheus (pending -> firing) -> Alertmanager -> harness webhook -> restart
-> resolved (Prometheus and webhook), with no alert outside the expected set, and
the detection lag (kill to firing, minus the rule's ``for:``) printed and recorded.
A hung (SIGSTOPped) node, whose scrapes time out instead of being refused, is down
only once no scrape has answered for ``thresholds.node_hung_s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.faults.process import PauseProcess
from harness.observe import ALERT_CATALOGUE, Observer, for_seconds
from harness.stack.stack import Stack

pytestmark = pytest.mark.stack

#: What killing one node may legitimately raise while no load runs.
ALLOWED = frozenset({"NodeDown", "GatewayBackendDown", "CircuitOpen"})
#: Slack beyond the rule's own ``for:`` for scrape + evaluation + polling.
SLACK_S = 15.0


@pytest.fixture
def observer(stack: Stack) -> Iterator[Observer]:
    with httpx.Client() as client:
        yield Observer.from_topology(stack.topology, client)


def test_prometheus_loaded_every_catalogued_alert(observer: Observer) -> None:
    assert observer.prometheus.alert_names() == frozenset(ALERT_CATALOGUE)
    observer.wait_until('up{job="harness"} == 1', within=SLACK_S)


def test_node_kill_fires_notifies_and_resolves_node_down(
        stack: Stack, observer: Observer,
        record_property: Callable[[str, object], None]) -> None:
    node = stack.topology.nodes[-1].name
    labels = {"node": node}
    for_s = for_seconds(stack.topology, "NodeDown")
    observer.wait_inactive("NodeDown", within=SLACK_S, labels=labels)
    since = time.time()
    try:
        stack.kill(node)
        killed_at = time.time()
        pending = observer.wait_for_alert("NodeDown", "pending", within=for_s + SLACK_S,
                                          labels=labels)
        firing = observer.wait_for_alert("NodeDown", "firing", within=for_s + SLACK_S,
                                         labels=labels)
        note = observer.wait_for_notification("NodeDown", status="firing", labels=labels,
                                              receiver="harness-critical", since=since,
                                              within=SLACK_S)
    finally:
        restart_s = stack.restart(node)
    lag = firing.seen_at - killed_at - for_s
    print(f"\nNodeDown {node}: pending after {pending.seen_at - killed_at:.2f}s, firing after "
          f"{firing.seen_at - killed_at:.2f}s, detection lag (minus for: {for_s:g}s) "
          f"{lag:.2f}s, notified after {note.received_at - killed_at:.2f}s, "
          f"restart-to-ready {restart_s:.1f}s")
    record_property("node_down_detection_lag_s", round(lag, 3))
    assert firing.labels["severity"] == "critical"
    assert note.labels["node"] == node
    observer.wait_for_alert("NodeDown", "resolved", within=SLACK_S, labels=labels,
                            since=since)
    observer.wait_for_notification("NodeDown", status="resolved", labels=labels, since=since,
                                   within=SLACK_S + stack.topology.alertmanager.group_interval_s)
    fired = observer.assert_no_unexpected_alerts(allowed=ALLOWED, since=since)
    assert any(f.name == "NodeDown" and f.labels.get("node") == node for f in fired)


def test_a_hung_node_is_down_only_after_node_hung(
        stack: Stack, observer: Observer,
        record_property: Callable[[str, object], None]) -> None:
    node = stack.topology.nodes[-1].name
    labels = {"node": node}
    thresholds = stack.topology.thresholds
    for_s = for_seconds(stack.topology, "NodeDown")
    timed_out = thresholds.for_long_s + 2
    no_scrape_answered = f'max_over_time(up{{job="vllm",node="{node}"}}[{timed_out}s]) == 0'
    observer.wait_inactive("NodeDown", within=SLACK_S, labels=labels)
    with PauseProcess(stack, node) as pause:
        observer.wait_until(no_scrape_answered, within=timed_out + SLACK_S)
        early = [a for a in observer.prometheus.alerts()
                 if a.name == "NodeDown" and a.matches(labels)]
        assert not early, f"NodeDown after {timed_out}s of timed-out scrapes: {early}"
        firing = observer.wait_for_alert("NodeDown", "firing", labels=labels,
                                         within=thresholds.node_hung_s + for_s + SLACK_S)
    paused_at = pause.observed.applied_at
    assert paused_at is not None, "the pause was never applied"
    hung_s = firing.seen_at - paused_at
    print(f"\nNodeDown {node} (SIGSTOP): quiet after {timed_out}s of timed-out scrapes, "
          f"firing after {hung_s:.1f}s (node_hung_s {thresholds.node_hung_s})")
    record_property("hung_node_down_after_s", round(hung_s, 3))
    assert hung_s >= thresholds.node_hung_s
    observer.wait_for_alert("NodeDown", "resolved", within=SLACK_S, labels=labels,
                            since=paused_at)
    stack.wait_ready(node)  # the resumed node serves a real completion again
