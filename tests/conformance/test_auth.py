"""The fault proxy API behind TOXIPROXY_AUTH_TOKEN, and its refusal to bind in the open.

These start their own server (the session's runs without a token), so they
run against the embedded proxy only.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest

from harness.auth import TOXIPROXY_TOKEN_ENV
from harness.clients.toxiproxy import ProxySpec, ToxicSpec, ToxiproxyClient
from harness.errors import ConfigError, FaultApplyError
from harness.toxiproxy import ServerThread, ToxiproxyServer
from harness.toxiproxy.cli import main as toxiproxy_main
from tests.conformance.upstreams import Upstreams

TOKEN = "conformance-token"
pytestmark = pytest.mark.usefixtures("extensions")


@pytest.fixture
def guarded_url() -> Iterator[str]:
    with ServerThread(port=0, rng=random.Random(1), token=TOKEN) as server:
        yield server.url


def get(url: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(url + path, headers=headers, timeout=5)


def test_non_loopback_bind_without_a_token_is_refused() -> None:
    for host in ("0.0.0.0", "::", "10.1.2.3"):
        with pytest.raises(ConfigError, match=TOXIPROXY_TOKEN_ENV):
            ToxiproxyServer(host, 0)


def test_the_command_refuses_too(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(TOXIPROXY_TOKEN_ENV, raising=False)
    assert toxiproxy_main(["--host", "0.0.0.0", "--port", "0"]) == 1
    assert "refuses to bind '0.0.0.0'" in capsys.readouterr().err


def test_non_loopback_bind_with_a_token_serves_only_the_token() -> None:
    with ServerThread("0.0.0.0", 0, token=TOKEN) as server:
        url = f"http://127.0.0.1:{server.server.port}"
        assert get(url, "/proxies").status_code == 401
        assert get(url, "/proxies", Authorization=f"Bearer {TOKEN}").status_code == 200


def test_no_header_is_401_with_a_challenge(guarded_url: str) -> None:
    response = get(guarded_url, "/proxies")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {"error": "unauthorized", "status": 401}


@pytest.mark.parametrize("header", [f"Basic {TOKEN}", TOKEN, "Bearer"])
def test_other_schemes_are_401(guarded_url: str, header: str) -> None:
    assert get(guarded_url, "/version", Authorization=header).status_code == 401


def test_wrong_token_is_403(guarded_url: str) -> None:
    response = get(guarded_url, "/proxies", Authorization="Bearer nope")
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers


def test_every_route_but_metrics_is_guarded(guarded_url: str) -> None:
    calls = [("GET", "/proxies"), ("POST", "/proxies"), ("POST", "/populate"),
             ("POST", "/reset"), ("GET", "/proxies/x"), ("DELETE", "/proxies/x"),
             ("POST", "/proxies/x/toxics"), ("DELETE", "/proxies/x/toxics/y"),
             ("GET", "/version"), ("GET", "/no/such/route"), ("POST", "/metrics")]
    with httpx.Client(base_url=guarded_url, timeout=5) as http:
        statuses = {(m, p): http.request(m, p, content=b"{}").status_code for m, p in calls}
        assert set(statuses.values()) == {401}, statuses
        assert http.get("/metrics").status_code == 200


def test_the_harness_client_sends_the_token_from_the_environment(
        guarded_url: str, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = ProxySpec("auth_proxy", upstreams.address("echo"))
    with httpx.Client(base_url=guarded_url, timeout=5) as http:
        monkeypatch.delenv(TOXIPROXY_TOKEN_ENV, raising=False)
        with pytest.raises(FaultApplyError, match="401"):
            ToxiproxyClient(http).create_proxy(spec)
        monkeypatch.setenv(TOXIPROXY_TOKEN_ENV, TOKEN)
        client = ToxiproxyClient(http)
        assert client.create_proxy(spec).enabled
        client.add_toxic(spec.name, ToxicSpec("latency", {"latency": 1}))
        client.reset()
        client.delete_proxy(spec.name)
        assert client.proxies() == {}


def test_loopback_without_a_token_stays_open() -> None:
    with ServerThread(port=0) as server:
        assert get(server.url, "/proxies").status_code == 200
        assert get(server.url, "/proxies", Authorization="Bearer ignored").status_code == 200
