"""The HTTP API: routes, status codes, JSON shapes and error bodies."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from harness.clients.toxiproxy import Proxy
from tests.conformance.upstreams import Upstreams


def error_of(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    return response.status_code, body["error"], body["status"]


def test_version_answers_json(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert isinstance(response.json()["version"], str)


def test_create_proxy_returns_201_and_the_bound_port(
        api: httpx.Client, upstreams: Upstreams, make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    assert proxy.listen.startswith("127.0.0.1:")
    assert proxy.listen_port > 0
    assert proxy.enabled
    assert proxy.toxics == ()
    raw = api.get(f"/proxies/{proxy.name}").json()
    assert set(raw) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert raw["upstream"] == upstreams.address("echo")
    assert raw["toxics"] == []
    assert proxy.name in api.get("/proxies").json()


def test_create_proxy_status_codes(api: httpx.Client, upstreams: Upstreams,
                                   make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    body = {"name": proxy.name, "listen": "127.0.0.1:0", "upstream": upstreams.address("echo")}
    assert error_of(api.post("/proxies", json=body)) == (409, "proxy already exists", 409)
    assert error_of(api.post("/proxies", json={"upstream": "127.0.0.1:1"})) == (
        400, "missing required field: name", 400)
    assert error_of(api.post("/proxies", json={"name": "x"})) == (
        400, "missing required field: upstream", 400)
    status, message, _ = error_of(api.post("/proxies", content=b"{not json"))
    assert (status, message.split(":")[0]) == (400, "bad request body")


def test_unknown_proxy_is_404(api: httpx.Client) -> None:
    for response in (api.get("/proxies/nope"), api.delete("/proxies/nope"),
                     api.get("/proxies/nope/toxics"),
                     api.post("/proxies/nope/toxics", json={"type": "latency"}),
                     api.patch("/proxies/nope", json={"enabled": False})):
        assert error_of(response) == (404, "proxy not found", 404)


def test_toxic_defaults_and_codes(api: httpx.Client, make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    base = f"/proxies/{proxy.name}/toxics"
    response = api.post(base, json={"type": "latency", "attributes": {"latency": 10}})
    assert response.status_code == 200  # Toxiproxy answers 200, not 201, here
    toxic = response.json()
    assert (toxic["name"], toxic["stream"], toxic["toxicity"]) == (
        "latency_downstream", "downstream", 1)
    assert toxic["attributes"] == {"latency": 10, "jitter": 0}
    assert error_of(api.post(base, json={"type": "latency"})) == (
        409, "toxic already exists", 409)
    assert error_of(api.post(base, json={"type": "no_such_toxic"})) == (
        400, "invalid toxic type", 400)
    assert error_of(api.post(base, json={"type": "latency", "stream": "sideways"})) == (
        400, "stream was invalid, can be either upstream or downstream", 400)
    assert error_of(api.get(f"{base}/nope")) == (404, "toxic not found", 404)
    assert error_of(api.delete(f"{base}/nope")) == (404, "toxic not found", 404)
    assert api.delete(f"{base}/latency_downstream").status_code == 204
    assert api.get(base).json() == []


def test_toxic_update_by_patch_and_post(api: httpx.Client,
                                        make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    base = f"/proxies/{proxy.name}/toxics"
    api.post(base, json={"type": "latency", "name": "slow", "stream": "upstream",
                         "attributes": {"latency": 10, "jitter": 2}})
    patched = api.patch(f"{base}/slow", json={"attributes": {"latency": 20}}).json()
    assert patched["attributes"] == {"latency": 20, "jitter": 2}
    assert patched["stream"] == "upstream"
    posted = api.post(f"{base}/slow", json={"toxicity": 0.5}).json()
    assert posted["toxicity"] == 0.5
    assert posted["attributes"]["latency"] == 20


def test_proxy_update_by_patch_and_post(api: httpx.Client,
                                        make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    disabled = api.patch(f"/proxies/{proxy.name}", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    enabled = api.post(f"/proxies/{proxy.name}", json={"enabled": True}).json()
    assert enabled["enabled"] is True
    assert enabled["listen"] == proxy.listen  # re-enabled on the same port


def test_delete_and_reset_answer_204(api: httpx.Client,
                                     make_proxy: Callable[..., Proxy]) -> None:
    proxy = make_proxy("echo")
    api.post(f"/proxies/{proxy.name}/toxics", json={"type": "latency"})
    api.patch(f"/proxies/{proxy.name}", json={"enabled": False})
    reset = api.post("/reset")
    assert reset.status_code == 204
    after = api.get(f"/proxies/{proxy.name}").json()
    assert (after["enabled"], after["toxics"]) == (True, [])
    assert api.delete(f"/proxies/{proxy.name}").status_code == 204
    assert api.get(f"/proxies/{proxy.name}").status_code == 404


@pytest.mark.parametrize("missing", ["name", "upstream"])
def test_populate(api: httpx.Client, upstreams: Upstreams, missing: str) -> None:
    names = ["populate_a", "populate_b"]
    items = [{"name": n, "listen": "127.0.0.1:0", "upstream": upstreams.address("echo")}
             for n in names]
    try:
        created = api.post("/populate", json=items)
        assert created.status_code == 201
        assert sorted(p["name"] for p in created.json()["proxies"]) == names
        bound = {p["name"]: p["listen"] for p in created.json()["proxies"]}
        same = [{**item, "listen": bound[str(item["name"])]} for item in items]
        again = api.post("/populate", json=same).json()["proxies"]
        assert {p["name"]: p["listen"] for p in again} == bound  # unchanged: kept as is
        bad = api.post("/populate", json=[{k: v for k, v in items[0].items() if k != missing}])
        assert bad.status_code == 400
        assert bad.json()["error"] == f"missing required field: {missing} at proxy 1"
    finally:
        for name in names:
            api.delete(f"/proxies/{name}")
