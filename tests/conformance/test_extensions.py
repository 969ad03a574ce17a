"""llm-drill's HTTP-aware toxics (embedded proxy only): sse_cut, sse_stall, http_error."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.faults.toxiproxy_client import Proxy, ToxicSpec, ToxiproxyClient
from tests.conformance.upstreams import HttpUpstream

pytestmark = pytest.mark.usefixtures("extensions")
MakeProxy = Callable[..., Proxy]


@pytest.fixture
def proxy(make_proxy: MakeProxy) -> Proxy:
    return make_proxy("http")


@pytest.fixture
def web(proxy: Proxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{proxy.listen_port}", timeout=5.0) as c:
        yield c


def events(web: httpx.Client, path: str) -> tuple[list[str], list[float]]:
    lines, stamps = [], []
    with web.stream("GET", path) as response:
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line.startswith("data:"):
                lines.append(line)
                stamps.append(time.perf_counter())
    return lines, stamps


def test_sse_passes_untouched_without_toxics(web: httpx.Client) -> None:
    lines, _ = events(web, "/sse?n=4")
    assert lines[-1] == "data: [DONE]"
    assert len(lines) == 5


def test_sse_cut_after_n_events(client: ToxiproxyClient, proxy: Proxy, web: httpx.Client) -> None:
    client.add_toxic(proxy.name, ToxicSpec("sse_cut", {"events": 3}))
    seen: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), web.stream("GET", "/sse?n=10") as response:
        seen.extend(line for line in response.iter_lines() if line.startswith("data:"))
    assert seen == ['data: {"i": 0}', 'data: {"i": 1}', 'data: {"i": 2}']


def test_sse_cut_leaves_non_sse_responses_alone(client: ToxiproxyClient, proxy: Proxy,
                                                web: httpx.Client) -> None:
    client.add_toxic(proxy.name, ToxicSpec("sse_cut", {"events": 0}))
    assert web.get("/json").json() == {"ok": True}


def test_sse_stall_holds_then_resumes(client: ToxiproxyClient, proxy: Proxy,
                                      web: httpx.Client) -> None:
    client.add_toxic(proxy.name, ToxicSpec("sse_stall", {"after_events": 2, "duration": 300}))
    lines, stamps = events(web, "/sse?n=4")
    assert len(lines) == 5
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[1] >= 0.28  # between event 2 and 3
    assert max(gaps[:1] + gaps[2:]) < 0.1


def test_sse_stall_until_removed(client: ToxiproxyClient, proxy: Proxy,
                                 web: httpx.Client) -> None:
    client.add_toxic(proxy.name, ToxicSpec("sse_stall", {"after_events": 1, "duration": 0}))
    with web.stream("GET", "/sse?n=3") as response:
        lines = response.iter_lines()
        assert next(lines) == 'data: {"i": 0}'
        started = time.perf_counter()
        client.remove_toxic(proxy.name, "sse_stall_downstream")
        rest = [line for line in lines if line.startswith("data:")]
    assert rest[-1] == "data: [DONE]"
    assert time.perf_counter() - started < 1.0


def test_http_error_answers_with_an_openai_style_error(
        client: ToxiproxyClient, proxy: Proxy, web: httpx.Client,
        http_upstream: HttpUpstream) -> None:
    toxic = client.add_toxic(proxy.name, ToxicSpec(
        "http_error", {"status": 429, "retry_after": 2}, stream="upstream"))
    assert toxic.name == "http_error_upstream"
    before = len(http_upstream.stats.requests)
    response = web.post("/v1/completions", json={"prompt": "hi"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("RateLimitError", 429, None)
    assert error["message"]
    assert len(http_upstream.stats.requests) == before  # never reached the upstream


def test_http_error_defaults_to_the_upstream_stream(api: httpx.Client, proxy: Proxy) -> None:
    toxic = api.post(f"/proxies/{proxy.name}/toxics", json={"type": "http_error"}).json()
    assert (toxic["name"], toxic["stream"]) == ("http_error_upstream", "upstream")
    assert toxic["attributes"]["status"] == 503


def test_http_error_toxicity_is_per_request_on_one_keep_alive_connection(
        client: ToxiproxyClient, proxy: Proxy, web: httpx.Client,
        http_upstream: HttpUpstream) -> None:
    client.add_toxic(proxy.name, ToxicSpec(
        "http_error", {"status": 503, "path_prefix": "/v1/"}, stream="upstream", toxicity=0.5))
    connections = http_upstream.stats.connections
    codes = [web.post("/v1/completions", json={"i": i}).status_code for i in range(20)]
    assert set(codes) == {200, 503}
    assert web.get("/health").status_code == 200  # outside path_prefix
    assert http_upstream.stats.connections - connections == 1  # one reused connection


def test_http_error_honours_connection_close(client: ToxiproxyClient, proxy: Proxy,
                                             web: httpx.Client) -> None:
    client.add_toxic(proxy.name, ToxicSpec("http_error", {"status": 500}, stream="upstream"))
    response = web.get("/x", headers={"Connection": "close"})
    assert response.status_code == 500
    assert response.headers["connection"] == "close"
    client.remove_toxic(proxy.name, "http_error_upstream")
    assert web.get("/x").status_code == 200


def test_extensions_refuse_the_wrong_stream(api: httpx.Client, proxy: Proxy) -> None:
    response = api.post(f"/proxies/{proxy.name}/toxics",
                        json={"type": "sse_cut", "stream": "upstream"})
    assert response.status_code == 400
    assert "downstream" in response.json()["error"]
