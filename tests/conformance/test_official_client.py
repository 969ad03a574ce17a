"""The official Python client (``toxiproxy-python``) drives the server unchanged.

Users' existing scripts use this client; these tests prove that every call it
makes (create, toxics, enable/disable, reset, destroy, populate) works against
the embedded server, and check each effect twice: through the API (with the
harness's own client) and on a real connection through the proxy.

The client keeps the API's host and port in *class attributes* of
``toxiproxy.api.APIConsumer`` (one global server per process) and talks
``requests``; the ``official`` fixture points it at the server under test and
puts the previous values back afterwards.
"""

from __future__ import annotations

import itertools
import socket
import statistics
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.clients.toxiproxy import Proxy, ToxiproxyClient
from tests.conformance.netutil import connect, round_trip
from tests.conformance.upstreams import Upstreams

LATENCY_MS = 150
_names = itertools.count()


@pytest.fixture
def official(toxiproxy_url: str) -> Iterator[toxiproxy.Toxiproxy]:
    parts = urlsplit(toxiproxy_url)
    saved = APIConsumer.host, APIConsumer.port
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer(parts.hostname, parts.port)
    yield server
    APIConsumer.host, APIConsumer.port = saved


@pytest.fixture
def created(official: toxiproxy.Toxiproxy, client: ToxiproxyClient,
            upstreams: Upstreams) -> Iterator[toxiproxy.Proxy]:
    """A proxy to the echo upstream, created by the official client."""
    name = f"official_{next(_names)}"
    proxy = official.create(upstream=upstreams.address("echo"), name=name)
    yield proxy
    client.delete_proxy(name, missing_ok=True)


def seen(client: ToxiproxyClient, official_proxy: toxiproxy.Proxy) -> Proxy:
    """The proxy as the server reports it (through the harness's client)."""
    return client.proxy(official_proxy.name)


def median_rtt(proxy: Proxy, samples: int = 3) -> float:
    with connect(proxy) as sock:
        return statistics.median(round_trip(sock) for _ in range(samples))


def refuses_connections(proxy: Proxy) -> bool:
    try:
        socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_running_and_version(official: toxiproxy.Toxiproxy) -> None:
    assert official.running()
    assert official.version()


def test_create_returns_the_bound_proxy(created: toxiproxy.Proxy,
                                        client: ToxiproxyClient) -> None:
    on_server = seen(client, created)
    assert created.listen == on_server.listen and on_server.listen_port != 0
    assert created.enabled is True and on_server.enabled
    assert created.upstream == on_server.upstream
    assert median_rtt(on_server) < 0.05


def test_proxies_and_get_proxy_list_what_the_server_has(
        official: toxiproxy.Toxiproxy, created: toxiproxy.Proxy) -> None:
    listed = official.proxies()
    assert created.name in listed
    got = official.get_proxy(created.name)
    assert got is not None
    assert (got.listen, got.upstream, got.enabled) == (
        created.listen, created.upstream, True)
    assert official.get_proxy("official_no_such_proxy") is None


def test_create_twice_raises_proxy_exists(official: toxiproxy.Toxiproxy,
                                          created: toxiproxy.Proxy) -> None:
    with pytest.raises(ProxyExists):
        official.create(upstream=created.upstream, name=created.name)


def test_latency_toxic_added_and_destroyed(created: toxiproxy.Proxy,
                                           client: ToxiproxyClient) -> None:
    created.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
    toxic = created.get_toxic("latency_downstream")
    assert toxic is not None
    assert (toxic.type, toxic.stream, toxic.toxicity) == ("latency", "downstream", 1.0)
    assert toxic.attributes["latency"] == LATENCY_MS
    on_server = client.toxics(created.name)
    assert [(t.name, t.attributes["latency"]) for t in on_server] == [
        ("latency_downstream", LATENCY_MS)]
    assert median_rtt(seen(client, created)) >= LATENCY_MS / 1000 * 0.95

    assert created.destroy_toxic("latency_downstream") is True
    assert client.toxics(created.name) == ()
    assert created.toxics() == {}
    assert median_rtt(seen(client, created)) < 0.05


def test_named_upstream_toxic_with_toxicity(created: toxiproxy.Proxy,
                                            client: ToxiproxyClient) -> None:
    created.add_toxic(name="slow_up", type="latency", stream="upstream", toxicity=0.5,
                      attributes={"latency": 10, "jitter": 2})
    (toxic,) = client.toxics(created.name)
    assert (toxic.name, toxic.stream, toxic.toxicity) == ("slow_up", "upstream", 0.5)
    assert dict(toxic.attributes) == {"latency": 10, "jitter": 2}


def test_toxic_errors_map_to_the_clients_exceptions(created: toxiproxy.Proxy) -> None:
    with pytest.raises(InvalidToxic):
        created.add_toxic(type="no_such_toxic")
    created.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(ProxyExists):
        created.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(NotFound):
        created.destroy_toxic("no_such_toxic")


def test_disable_and_enable(created: toxiproxy.Proxy, client: ToxiproxyClient) -> None:
    created.disable()
    assert created.enabled is False
    on_server = seen(client, created)
    assert not on_server.enabled
    assert refuses_connections(on_server)

    created.enable()
    assert seen(client, created).enabled
    assert median_rtt(seen(client, created)) < 0.05


def test_down_context_restores_the_proxy(created: toxiproxy.Proxy,
                                         client: ToxiproxyClient) -> None:
    with created.down():
        assert refuses_connections(seen(client, created))
    assert seen(client, created).enabled
    assert median_rtt(seen(client, created)) < 0.05


def test_reset_enables_and_clears_toxics(official: toxiproxy.Toxiproxy,
                                         created: toxiproxy.Proxy,
                                         client: ToxiproxyClient) -> None:
    created.add_toxic(type="latency", attributes={"latency": LATENCY_MS})
    created.disable()
    assert official.reset() is True
    on_server = seen(client, created)
    assert on_server.enabled and on_server.toxics == ()
    assert median_rtt(on_server) < 0.05


def test_destroy_removes_the_proxy_and_its_listener(
        official: toxiproxy.Toxiproxy, created: toxiproxy.Proxy,
        client: ToxiproxyClient) -> None:
    before = seen(client, created)
    assert official.destroy(created) is True
    assert created.name not in client.proxies()
    assert refuses_connections(before)
    with pytest.raises(NotFound):
        created.toxics()


def test_populate_creates_missing_proxies(official: toxiproxy.Toxiproxy,
                                          client: ToxiproxyClient,
                                          upstreams: Upstreams) -> None:
    names = [f"official_pop_{next(_names)}" for _ in range(2)]
    specs = [{"name": n, "upstream": upstreams.address("echo"), "listen": "127.0.0.1:0"}
             for n in names]
    try:
        made = official.populate(specs)
        assert sorted(p.name for p in made) == names
        for name in names:
            assert median_rtt(client.proxy(name)) < 0.05
    finally:
        for name in names:
            client.delete_proxy(name, missing_ok=True)
