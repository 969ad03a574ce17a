"""The Alertmanager client posts a silence of equal matchers between two ISO times and
returns its id, expires it by id, lists the alerts Alertmanager holds for a set of labels
(silenced or not), and names the URL and what it expected when an answer is wrong."""

from __future__ import annotations

import json

import httpx
import pytest

from harness.clients.alertmanager import AlertmanagerClient, HeldAlert
from harness.errors import Unreachable

URL = "http://am.test:9093"


def client(handler: httpx.MockTransport) -> AlertmanagerClient:
    return AlertmanagerClient(URL + "/", httpx.Client(transport=handler))


def test_a_silence_is_posted_with_equal_matchers_and_utc_times() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"silenceID": "abc-1"})

    silence_id = client(httpx.MockTransport(handle)).silence(
        {"node": "node1", "alertname": "NodeDown"}, starts_at=0.0, ends_at=90.5,
        comment="rolling upgrade: node1 to canary")

    assert silence_id == "abc-1"
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", URL + "/api/v2/silences")
    body = json.loads(request.content)
    assert body["startsAt"] == "1970-01-01T00:00:00Z"
    assert body["endsAt"] == "1970-01-01T00:01:30.500000Z"
    assert [(m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in body["matchers"]] == [
        ("alertname", "NodeDown", False, True), ("node", "node1", False, True)]
    assert body["createdBy"] == "llm-drill"


def test_a_silence_is_expired_by_its_id() -> None:
    seen: list[tuple[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(200)

    client(httpx.MockTransport(handle)).expire("abc-1")

    assert seen == [("DELETE", "/api/v2/silence/abc-1")]


def test_held_alerts_are_filtered_by_label_and_say_what_silences_them() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.params.get_list("filter") == ['alertname="NodeDown"',
                                                        'node="node1"']
        return httpx.Response(200, json=[{
            "labels": {"alertname": "NodeDown", "node": "node1", "severity": "critical"},
            "status": {"state": "suppressed", "silencedBy": ["abc-1"], "inhibitedBy": []}}])

    held = client(httpx.MockTransport(handle)).held({"node": "node1", "alertname": "NodeDown"})

    assert held == (HeldAlert("NodeDown", "suppressed", {
        "alertname": "NodeDown", "node": "node1", "severity": "critical"}, ("abc-1",)),)


@pytest.mark.parametrize("reply", [httpx.Response(500, text="boom"),
                                   httpx.Response(200, text="not json"),
                                   httpx.Response(200, json={"id": "x"})])
def test_a_wrong_answer_names_the_url_and_the_expectation(reply: httpx.Response) -> None:
    with pytest.raises(Unreachable, match=r"http://am.test:9093/api/v2/silences is "
                                          r"unreachable: expected a new silence's id"):
        client(httpx.MockTransport(lambda _: reply)).silence(
            {"alertname": "NodeDown"}, starts_at=0.0, ends_at=1.0, comment="c")


def test_an_engine_that_refuses_the_connection_is_unreachable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unreachable, match=r"expected a list of alerts.*ConnectError"):
        client(httpx.MockTransport(refuse)).held({"alertname": "NodeDown"})
