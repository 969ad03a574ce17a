"""ToxiproxyClient on httpx.MockTransport: parsing and error mapping."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from harness.clients.toxiproxy import ProxySpec, ToxicSpec, ToxiproxyClient
from harness.errors import ConfigError, FaultApplyError, FaultRevertError

PROXY = {"name": "node-1", "listen": "127.0.0.1:20001", "upstream": "127.0.0.1:8001",
         "enabled": True, "toxics": [{"name": "latency_downstream", "type": "latency",
                                      "stream": "downstream", "toxicity": 1,
                                      "attributes": {"latency": 100, "jitter": 0}}]}


def make(handler: Callable[[httpx.Request], httpx.Response]) -> ToxiproxyClient:
    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://tp:8474")
    return ToxiproxyClient(http)


def fail(status: int, message: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json={"error": message, "status": status})


def test_proxy_is_parsed_into_frozen_dataclasses() -> None:
    proxy = make(lambda r: httpx.Response(200, json=PROXY)).proxy("node-1")
    assert proxy.listen_port == 20001
    assert proxy.toxics[0].attributes == {"latency": 100, "jitter": 0}
    assert proxy.toxics[0].toxicity == 1.0
    with pytest.raises(AttributeError):
        proxy.name = "x"  # type: ignore[misc]  # frozen on purpose: the test


def test_requests_are_shaped_like_toxiproxy_expects() -> None:
    seen: list[tuple[str, str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        if request.url.path == "/proxies":
            return httpx.Response(201, json=PROXY)
        return httpx.Response(200, json=PROXY["toxics"][0])  # type: ignore[index]  # JSON literal

    client = make(handler)
    client.create_proxy(ProxySpec("node-1", "127.0.0.1:8001"))
    client.add_toxic("node-1", ToxicSpec("latency", {"latency": 100}, name="slow"))
    assert seen[0] == ("POST", "/proxies", {"name": "node-1", "upstream": "127.0.0.1:8001",
                                            "listen": "127.0.0.1:0", "enabled": True})
    assert seen[1] == ("POST", "/proxies/node-1/toxics", {
        "type": "latency", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"latency": 100}, "name": "slow"})


def test_400_maps_to_config_error_with_the_server_message() -> None:
    with pytest.raises(ConfigError, match="invalid toxic type"):
        make(fail(400, "invalid toxic type")).add_toxic("p", ToxicSpec("nope"))


def test_apply_side_failures_map_to_fault_apply_error() -> None:
    with pytest.raises(FaultApplyError, match="404: proxy not found"):
        make(fail(404, "proxy not found")).add_toxic("p", ToxicSpec("latency"))
    with pytest.raises(FaultApplyError, match="409: toxic already exists"):
        make(fail(409, "toxic already exists")).add_toxic("p", ToxicSpec("latency"))


def test_revert_side_failures_map_to_fault_revert_error() -> None:
    with pytest.raises(FaultRevertError, match="500: boom"):
        make(fail(500, "boom")).remove_toxic("p", "t")
    with pytest.raises(FaultRevertError, match="500"):
        make(fail(500, "boom")).reset()


def test_missing_toxic_is_none_or_ok_when_asked() -> None:
    client = make(fail(404, "toxic not found"))
    assert client.toxic("p", "t") is None
    client.remove_toxic("p", "t", missing_ok=True)
    with pytest.raises(FaultRevertError):
        make(fail(404, "proxy not found")).remove_toxic("p", "t", missing_ok=True)
    with pytest.raises(FaultApplyError, match="proxy not found"):
        make(fail(404, "proxy not found")).toxic("p", "t")


def test_transport_errors_are_mapped_from_the_cause() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(FaultApplyError, match="ConnectError") as info:
        make(refuse).proxies()
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    with pytest.raises(FaultRevertError):
        make(refuse).delete_proxy("p")


def test_non_json_answer_is_an_apply_error() -> None:
    with pytest.raises(FaultApplyError, match="non-JSON"):
        make(lambda r: httpx.Response(200, text="<html>")).proxy("p")


def authorization_seen(client_token: str | None) -> list[str | None]:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(204) if request.url.path == "/reset" else httpx.Response(
            201, json=PROXY)

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://tp:8474")
    client = ToxiproxyClient(http, token=client_token)
    client.reset()
    client.create_proxy(ProxySpec("node-1", "127.0.0.1:8001"))
    return seen


def test_the_token_in_toxiproxy_auth_token_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOXIPROXY_AUTH_TOKEN", "from-env")
    assert authorization_seen(None) == ["Bearer from-env"] * 2
    assert authorization_seen("given") == ["Bearer given"] * 2


def test_no_token_no_authorization_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOXIPROXY_AUTH_TOKEN", raising=False)
    assert authorization_seen(None) == [None, None]
