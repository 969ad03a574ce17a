"""llm-drill's extension toxics (embedded proxy only).

sse_cut, sse_stall and http_error (HTTP-aware), hold_upstream (client closes
not propagated).
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.clients.toxiproxy import Proxy, ToxicSpec, ToxiproxyClient
from harness.observe.fault_proxy_log import parse_events, terminated_at
from harness.toxiproxy.proxy import events as events_logger
from harness.waits import Probe, Wait
from tests.conformance.netutil import connect, recv_exactly
from tests.conformance.test_metrics import sample
from tests.conformance.upstreams import HttpUpstream, Trickle, TrickleConnection

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


# -- hold_upstream ------------------------------------------------------------

HOLD = "hold_upstream_downstream"
PROMPTLY_S = 0.5


def connect_and_leave(proxy: Proxy, trickle: Trickle) -> tuple[TrickleConnection, float]:
    """Connect through ``proxy``, read the first bytes, close; the upstream's record."""
    before = len(trickle.connections)
    with connect(proxy) as sock:
        recv_exactly(sock, 1)
        conn = trickle.connections[before]  # it exists: its bytes arrived
        # Unread bytes make the close a RST; a FIN is tested below.
        left_at = time.monotonic()
    return conn, left_at


def downstream_bytes(api: httpx.Client, proxy: Proxy) -> tuple[float, float]:
    """(read from the upstream, written to the client) by the proxy so far."""
    return (sample(api, "toxiproxy_proxy_received_bytes_total",
                   proxy=proxy.name, direction="downstream"),
            sample(api, "toxiproxy_proxy_sent_bytes_total",
                   proxy=proxy.name, direction="downstream"))


def wait_no_connection(api: httpx.Client, proxy: Proxy, within: float = 2.0) -> None:
    Wait(within=within, interval=0.02).until("the proxy's connection closed", lambda: Probe(
        sample(api, "toxiproxy_proxy_active_connections", proxy=proxy.name) == 0))


def test_client_close_reaches_the_upstream_without_hold_upstream(
        make_proxy: MakeProxy, trickle: Trickle) -> None:
    proxy = make_proxy("trickle")
    upstream, left_at = connect_and_leave(proxy, trickle)
    assert upstream.closed.wait(PROMPTLY_S * 4)
    assert upstream.closed_at is not None and upstream.closed_at - left_at < PROMPTLY_S


def test_hold_upstream_keeps_reading_the_upstream_until_removed(
        api: httpx.Client, client: ToxiproxyClient, make_proxy: MakeProxy,
        trickle: Trickle) -> None:
    proxy = make_proxy("trickle")
    toxic = client.add_toxic(proxy.name, ToxicSpec("hold_upstream", {}))
    assert (toxic.name, toxic.stream, toxic.attributes["max_hold"]) == (HOLD, "downstream", 60000)
    upstream, _ = connect_and_leave(proxy, trickle)
    sent = upstream.sent
    assert not upstream.closed.wait(PROMPTLY_S)  # the client's close did not reach it
    assert upstream.sent > sent  # and it kept sending
    read, written = downstream_bytes(api, proxy)
    Wait(within=2.0, interval=0.02).until("the proxy still reading the upstream", lambda: Probe(
        downstream_bytes(api, proxy)[0] > read))
    assert downstream_bytes(api, proxy)[1] == written  # read and dropped
    assert sample(api, "toxiproxy_proxy_active_connections", proxy=proxy.name) == 1
    assert sample(api, "toxiproxy_proxy_http_injections_total", proxy=proxy.name,
                  type="hold_upstream") == 1
    client.remove_toxic(proxy.name, HOLD)
    assert upstream.closed.wait(2.0)  # removing the toxic closes the held upstream
    wait_no_connection(api, proxy)


def test_hold_upstream_after_a_client_fin(api: httpx.Client, client: ToxiproxyClient,
                                          make_proxy: MakeProxy, trickle: Trickle) -> None:
    proxy = make_proxy("trickle")
    client.add_toxic(proxy.name, ToxicSpec("hold_upstream", {}))
    before = len(trickle.connections)
    with connect(proxy) as sock:
        recv_exactly(sock, 1)
        sock.shutdown(socket.SHUT_WR)  # FIN, not RST
        upstream = trickle.connections[before]
        assert not upstream.closed.wait(PROMPTLY_S)
    client.remove_toxic(proxy.name, HOLD)
    assert upstream.closed.wait(2.0)
    wait_no_connection(api, proxy)


def test_hold_upstream_closes_after_max_hold(client: ToxiproxyClient, make_proxy: MakeProxy,
                                             trickle: Trickle) -> None:
    proxy = make_proxy("trickle")
    client.add_toxic(proxy.name, ToxicSpec("hold_upstream", {"max_hold": 300}))
    upstream, left_at = connect_and_leave(proxy, trickle)
    assert upstream.closed.wait(3.0)
    assert upstream.closed_at is not None and 0.28 <= upstream.closed_at - left_at < 2.0


def test_hold_upstream_update_counts_max_hold_from_the_start_of_the_hold(
        client: ToxiproxyClient, make_proxy: MakeProxy, trickle: Trickle) -> None:
    proxy = make_proxy("trickle")
    client.add_toxic(proxy.name, ToxicSpec("hold_upstream", {"max_hold": 0}))  # no limit
    upstream, _ = connect_and_leave(proxy, trickle)
    assert not upstream.closed.wait(PROMPTLY_S)
    client.update_toxic(proxy.name, HOLD, attributes={"max_hold": 100})  # already past
    assert upstream.closed.wait(PROMPTLY_S)


def test_hold_upstream_ends_when_the_upstream_closes(
        api: httpx.Client, client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("source")
    client.add_toxic(proxy.name, ToxicSpec("hold_upstream", {}))
    size = 20_000_000
    with connect(proxy) as sock:
        sock.sendall(b"%d\n" % size)
        recv_exactly(sock, 1)
    wait_no_connection(api, proxy, within=10.0)  # long before max_hold (60 s)
    read, written = downstream_bytes(api, proxy)
    assert read == size and written < size  # all read from the upstream, the rest dropped


def test_hold_upstream_toxicity_is_per_connection(make_proxy: MakeProxy, client: ToxiproxyClient,
                                                  trickle: Trickle) -> None:
    proxy = make_proxy("trickle")
    client.add_toxic(proxy.name, ToxicSpec("hold_upstream", {}, toxicity=0.0))
    upstream, _ = connect_and_leave(proxy, trickle)
    assert upstream.closed.wait(PROMPTLY_S * 4)


def test_the_proxy_logs_when_it_closes_and_reopens_its_listener(
        client: ToxiproxyClient, make_proxy: MakeProxy, caplog: pytest.LogCaptureFixture) -> None:
    """Toxiproxy's ``Terminated proxy`` line: when a disable took effect, by the proxy."""
    caplog.set_level(logging.INFO, logger=events_logger.name)
    proxy = make_proxy("echo")
    asked = time.time()
    client.update_proxy(proxy.name, enabled=False)
    answered = time.time()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=2).close()
    client.update_proxy(proxy.name, enabled=True)

    log = "\n".join(record.getMessage() for record in caplog.records)
    closed = terminated_at(log, proxy.name, since=asked)
    assert closed is not None and asked <= closed <= answered
    assert [e.message for e in parse_events(log) if e.proxy == proxy.name] == [
        "Started proxy", "Terminated proxy", "Started proxy"]
