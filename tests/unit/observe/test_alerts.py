from __future__ import annotations

import httpx
import pytest

from harness.errors import ConfigError, DrillFailed, NotReady, QueryError, Unreachable
from harness.observe import (
    AlertObservation,
    Observer,
    PrometheusClient,
    WebhookClient,
    severity_route,
)
from tests.fakes import FakeClock, FakePrometheus, alert_json


def test_wait_for_alert_sees_pending_then_firing(observer: Observer, prom: FakePrometheus,
                                                 clock: FakeClock) -> None:
    prom.alert_script = [[], [alert_json("NodeDown", "pending", node="node1")],
                         [alert_json("NodeDown", "firing", node="node1")]]
    pending = observer.wait_for_alert("NodeDown", "pending", within=5, labels={"node": "node1"})
    firing = observer.wait_for_alert("NodeDown", "firing", within=5, labels={"node": "node1"})
    assert pending.state == "pending" and firing.state == "firing"
    assert firing.labels["node"] == "node1"
    assert firing.active_at == 1704067200.5
    assert firing.seen_at == clock.now() + 1_700_000_000


def test_wait_for_alert_ignores_other_labels(observer: Observer, prom: FakePrometheus) -> None:
    prom.alert_script = [[alert_json("NodeDown", "firing", node="node2")]]
    with pytest.raises(NotReady) as info:
        observer.wait_for_alert("NodeDown", within=1, labels={"node": "node1"})
    assert 'alert NodeDown{node="node1"} to be firing' in str(info.value)
    assert "no active NodeDown alert" in info.value.last_seen


SINCE = 1_700_000_000.0  # the drill's start, on the observer fixture's wall clock


def _fired(name: str = "NodeDown", at: float = SINCE + 30, **labels: str) -> dict[str, object]:
    """An ``ALERTS`` series that was firing from ``at`` for 5 s."""
    return {"metric": {"alertname": name, "alertstate": "firing", "severity": "critical",
                       **labels}, "values": [[at, "1"], [at + 5, "1"]]}


def test_wait_for_alert_resolved_after_firing(observer: Observer, prom: FakePrometheus) -> None:
    prom.alert_script = [[alert_json("NodeDown", "firing", node="node1")],
                         [alert_json("NodeDown", "firing", node="node1")], []]
    prom.matrix = [_fired(node="node1")]
    seen = observer.wait_for_alert("NodeDown", "resolved", within=5, labels={"node": "node1"},
                                   since=SINCE)
    assert seen.state == "resolved" and seen.waited_s > 0
    assert seen.fired_at == SINCE + 30
    assert seen.labels == {"alertname": "NodeDown", "severity": "critical", "node": "node1"}


def test_an_alert_that_never_fired_is_not_resolved(observer: Observer,
                                                   prom: FakePrometheus) -> None:
    prom.alert_script = [[]]
    prom.matrix = [_fired(node="node2")]  # another node's episode proves nothing here
    with pytest.raises(NotReady) as info:
        observer.wait_for_alert("NodeDown", "resolved", within=3, labels={"node": "node1"},
                                since=SINCE)
    assert "NodeDown never fired since" in info.value.last_seen
    assert 'alert NodeDown{node="node1"} to fire and be resolved' in str(info.value)


def test_a_firing_over_before_it_was_looked_for_still_fired(observer: Observer,
                                                            prom: FakePrometheus) -> None:
    """A short alert that fired and resolved while the drill was busy: ALERTS kept it."""
    prom.alert_script = [[]]
    prom.matrix = [_fired(node="node1")]
    seen = observer.wait_for_alert("NodeDown", within=3, labels={"node": "node1"}, since=SINCE)
    assert (seen.state, seen.fired_at, seen.active_at) == ("firing", SINCE + 30, None)


def test_a_firing_before_since_or_of_other_labels_is_not_this_firing(
        observer: Observer, prom: FakePrometheus) -> None:
    prom.alert_script = [[]]
    prom.matrix = [_fired(node="node2")]
    with pytest.raises(NotReady):
        observer.wait_for_alert("NodeDown", within=3, labels={"node": "node1"}, since=SINCE)
    with pytest.raises(NotReady):  # without since, only an active alert counts
        observer.wait_for_alert("NodeDown", within=3, labels={"node": "node2"})


def test_resolved_needs_the_moment_since_which_it_fired(observer: Observer) -> None:
    with pytest.raises(ConfigError, match="needs the moment since"):
        observer.wait_for_alert("NodeDown", "resolved", within=5)


def _delivered(received_at: float, *, receiver: str = "harness-critical",
               path: str = "/alerts/critical", status: str = "firing",
               starts_at: str = "2023-11-14T22:14:00.25Z") -> dict[str, object]:
    return {"alertname": "NodeDown", "status": status,
            "labels": {"alertname": "NodeDown", "severity": "critical", "node": "node1",
                       "cluster": "external-label"},
            "starts_at": starts_at, "ends_at": "", "receiver": receiver,
            "received_at": received_at, "path": path}


def _firing(active_at: float | None = SINCE + 20) -> AlertObservation:
    return AlertObservation(name="NodeDown", state="firing",
                            labels={"alertname": "NodeDown", "severity": "critical",
                                    "node": "node1"},
                            seen_at=SINCE + 41, waited_s=3.0, active_at=active_at)


def test_delivery_through_the_severity_route_records_both_lags(
        observer: Observer, prom: FakePrometheus) -> None:
    prom.notifications = [_delivered(SINCE + 41.5)]  # startsAt is SINCE + 40.25
    delivery = observer.wait_for_delivery(_firing(), since=SINCE, within=1)
    assert (delivery.receiver, delivery.path) == ("harness-critical", "/alerts/critical")
    assert delivery.detection_lag_s == pytest.approx(20.25)
    assert delivery.notification_lag_s == pytest.approx(1.25)
    assert "detection lag 20.2s, notification lag 1.2s" in delivery.describe()


def test_delivery_to_another_route_is_not_delivery(observer: Observer,
                                                   prom: FakePrometheus) -> None:
    prom.notifications = [_delivered(SINCE + 41.5, receiver="harness-default",
                                     path="/alerts/default"),
                          _delivered(SINCE + 41.5, path="/alerts/warning")]
    with pytest.raises(NotReady) as info:
        observer.wait_for_delivery(_firing(), since=SINCE, within=2)
    assert "via harness-critical at /alerts/critical" in info.value.awaited


def test_a_notification_from_before_the_drill_is_not_this_drills_delivery(
        observer: Observer, prom: FakePrometheus) -> None:
    prom.notifications = [_delivered(SINCE - 60), _delivered(SINCE + 5, status="resolved")]
    with pytest.raises(NotReady, match="2 received"):
        observer.wait_for_delivery(_firing(), since=SINCE, within=2)


def test_delivery_of_a_resolved_alert_reads_active_at_from_alerts_for_state(
        observer: Observer, prom: FakePrometheus) -> None:
    prom.matrix_for = {"ALERTS_FOR_STATE": [
        {"metric": {"__name__": "ALERTS_FOR_STATE", "alertname": "NodeDown",
                    "node": "node1", "severity": "critical"},
         "values": [[SINCE + 21, str(SINCE + 20.5)], [SINCE + 22, str(SINCE + 20.5)]]}]}
    prom.notifications = [_delivered(SINCE + 41.5)]
    resolved = AlertObservation(name="NodeDown", state="resolved",
                                labels={"alertname": "NodeDown", "severity": "critical",
                                        "node": "node1"},
                                seen_at=SINCE + 80, waited_s=1.0, fired_at=SINCE + 41)
    delivery = observer.wait_for_delivery(resolved, since=SINCE, within=1)
    assert delivery.active_at == SINCE + 20.5
    assert delivery.detection_lag_s == pytest.approx(19.75)


def test_unknown_times_stay_unknown_never_zero(observer: Observer,
                                               prom: FakePrometheus) -> None:
    prom.notifications = [_delivered(SINCE + 41.5, starts_at="")]
    delivery = observer.wait_for_delivery(_firing(active_at=None), since=SINCE, within=1)
    assert delivery.detection_lag_s is None and delivery.notification_lag_s is None
    assert "detection lag unknown, notification lag unknown" in delivery.describe()


def test_severity_routes_follow_the_alertmanager_template() -> None:
    assert severity_route("warning") == ("harness-warning", "/alerts/warning")
    assert severity_route("") == ("harness-default", "/alerts/default")


def test_timeout_reports_what_was_seen(observer: Observer, prom: FakePrometheus) -> None:
    prom.alert_script = [[alert_json("NodeDown", "pending", node="node1")]]
    with pytest.raises(NotReady) as info:
        observer.wait_for_alert("NodeDown", "firing", within=2)
    assert info.value.within == 2
    assert 'NodeDown{node="node1"} pending since' in info.value.last_seen


def test_unknown_alert_name_is_a_config_error_listing_known(observer: Observer) -> None:
    with pytest.raises(ConfigError) as info:
        observer.wait_for_alert("NodeDwn", within=5)
    assert "NodeDwn" in str(info.value)
    assert "CircuitOpen, GatewayBackendDown, NodeDown" in str(info.value)


def test_unreachable_prometheus_during_wait(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/rules":
            return httpx.Response(200, json={"status": "success", "data": {"groups": [
                {"name": "g", "rules": [{"name": "NodeDown", "type": "alerting",
                                         "query": "up == 0", "health": "ok"}]}]}})
        raise httpx.ConnectError("refused", request=request)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    observer = Observer(PrometheusClient("http://prom:9090", http),
                        WebhookClient("http://hook:9094", http), clock=clock)
    with pytest.raises(Unreachable) as info:
        observer.wait_for_alert("NodeDown", within=1)
    assert info.value.url == "http://prom:9090/api/v1/alerts"
    assert info.value.expected == "alert NodeDown{} to be firing"


def test_wait_until_returns_the_matching_samples(observer: Observer,
                                                  prom: FakePrometheus) -> None:
    prom.vector = [{"metric": {"node": "node1"}, "value": [1, "0"]}]
    (sample,) = observer.wait_until('up{job="vllm"} == 0', within=1)
    assert sample.labels == {"node": "node1"}
    assert prom.requests[-1].url.params["query"] == 'up{job="vllm"} == 0'


def test_wait_until_times_out_on_empty_result(observer: Observer) -> None:
    with pytest.raises(NotReady, match="empty result"):
        observer.wait_until("up == 0", within=1)


def test_wait_until_raises_query_errors_at_once(clock: FakeClock) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"status": "error", "errorType": "bad_data",
                                         "error": "parse error"})

    http = httpx.Client(transport=httpx.MockTransport(handler))
    observer = Observer(PrometheusClient("http://p", http), WebhookClient("http://w", http),
                        clock=clock)
    with pytest.raises(QueryError, match="parse error"):
        observer.wait_until("up ==", within=10)
    assert len(calls) == 1


def _notification(status: str, received_at: float, receiver: str = "harness-critical",
                  ) -> dict[str, object]:
    return {"alertname": "NodeDown", "status": status, "labels": {"node": "node1"},
            "starts_at": "", "ends_at": "", "receiver": receiver,
            "received_at": received_at, "path": "/alerts/critical"}


def test_wait_for_notification_filters_status_receiver_and_since(
        observer: Observer, prom: FakePrometheus) -> None:
    prom.notifications = [_notification("resolved", 50.0), _notification("firing", 50.0),
                          _notification("firing", 150.0, "harness-warning"),
                          _notification("firing", 160.0)]
    got = observer.wait_for_notification("NodeDown", status="firing", since=100.0,
                                         receiver="harness-critical", within=1)
    assert got.received_at == 160.0


def test_wait_for_notification_times_out_listing_received(observer: Observer,
                                                          prom: FakePrometheus) -> None:
    prom.notifications = [_notification("firing", 10.0)]
    with pytest.raises(NotReady) as info:
        observer.wait_for_notification("NodeDown", status="resolved", within=1)
    assert "1 received, last: NodeDown firing via harness-critical" in info.value.last_seen


def test_assert_no_unexpected_alerts_passes_for_allowed(observer: Observer,
                                                        prom: FakePrometheus) -> None:
    prom.matrix = [{"metric": {"alertname": "NodeDown", "alertstate": "firing",
                               "node": "node1"}, "values": [[100, "1"], [105, "1"]]}]
    (fired,) = observer.assert_no_unexpected_alerts(allowed={"NodeDown"}, since=90.0,
                                                    until=120.0)
    assert (fired.name, fired.first_seen, fired.last_seen) == ("NodeDown", 100.0, 105.0)
    query = prom.requests[-1].url.params
    assert query["query"] == 'max_over_time(ALERTS{alertstate="firing"}[1s])'
    assert (query["start"], query["end"]) == ("90.0", "120.0")


def test_assert_no_unexpected_alerts_fails_with_labels_and_times(
        observer: Observer, prom: FakePrometheus) -> None:
    prom.matrix = [
        {"metric": {"alertname": "NodeDown", "alertstate": "firing", "node": "node1"},
         "values": [[100, "1"]]},
        {"metric": {"alertname": "CircuitOpen", "alertstate": "firing",
                    "gateway": "gateway-a"}, "values": [[1700000000, "1"], [1700000002, "1"]]}]
    with pytest.raises(DrillFailed) as info:
        observer.assert_no_unexpected_alerts(allowed={"NodeDown"}, since=90.0, until=120.0)
    text = str(info.value)
    assert 'CircuitOpen{gateway="gateway-a"} firing from 22:13:20.000Z to 22:13:22.000Z' in text
    assert "NodeDown{" not in text


def test_assert_no_unexpected_alerts_rejects_unknown_allowed_names(observer: Observer) -> None:
    with pytest.raises(ConfigError, match="NodeDwn"):
        observer.assert_no_unexpected_alerts(allowed={"NodeDwn"}, since=0.0, until=1.0)


def test_wait_inactive_holds_once_no_alert_is_active(observer: Observer,
                                                     prom: FakePrometheus) -> None:
    prom.alert_script = [[alert_json("NodeDown", "firing", node="node1")], []]
    observer.wait_inactive("NodeDown", within=5, labels={"node": "node1"})
    assert prom.alert_script == [[]]  # the firing answer was read, then the empty one


def test_wait_inactive_gives_up_naming_the_active_alert(observer: Observer,
                                                        prom: FakePrometheus) -> None:
    prom.alert_script = [[alert_json("NodeDown", "firing", node="node1")]]
    with pytest.raises(NotReady, match="NodeDown") as info:
        observer.wait_inactive("NodeDown", within=2)
    assert "firing" in info.value.last_seen
