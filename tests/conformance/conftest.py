"""Fixtures for the Toxiproxy conformance suite.

By default the suite runs against the embedded proxy, started in-process on a
free loopback port with a seeded random source. With ``TOXIPROXY_URL`` set it
runs the same tests against that server (a real Toxiproxy must run on this
host, since the test upstreams listen on 127.0.0.1); tests of llm-drill's
extensions are then skipped.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.clients.toxiproxy import Proxy, ProxySpec, ToxiproxyClient
from harness.toxiproxy import ServerThread
from tests.conformance.upstreams import (
    HttpUpstream,
    Trickle,
    Upstreams,
    echo,
    reply_and_close,
    source,
)

SEED = 20240611
_names = itertools.count()


@pytest.fixture(scope="session")
def toxiproxy_url() -> Iterator[str]:
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        yield url.rstrip("/")
        return
    with ServerThread(port=0, rng=random.Random(SEED)) as server:
        yield server.url


@pytest.fixture(scope="session")
def embedded() -> bool:
    return not os.environ.get("TOXIPROXY_URL")


@pytest.fixture
def extensions(embedded: bool) -> None:
    """Skip a test of llm-drill's extensions when the server is a real Toxiproxy."""
    if not embedded:
        pytest.skip("LLM extension toxics exist only in the embedded proxy")


@pytest.fixture(scope="session")
def http_upstream() -> HttpUpstream:
    return HttpUpstream()


@pytest.fixture(scope="session")
def trickle() -> Trickle:
    return Trickle()


@pytest.fixture(scope="session")
def upstreams(http_upstream: HttpUpstream, trickle: Trickle) -> Iterator[Upstreams]:
    servers = Upstreams({"echo": echo, "reply_and_close": reply_and_close,
                         "source": source, "http": http_upstream, "trickle": trickle})
    servers.start()
    yield servers
    servers.stop()


@pytest.fixture
def api(toxiproxy_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toxiproxy_url, timeout=5.0) as client:
        yield client


@pytest.fixture
def client(api: httpx.Client) -> ToxiproxyClient:
    return ToxiproxyClient(api)


@pytest.fixture
def make_proxy(client: ToxiproxyClient, upstreams: Upstreams) -> Iterator[Callable[..., Proxy]]:
    """``make_proxy("echo")`` -> a fresh proxy on a free port; deleted afterwards."""
    created: list[str] = []

    def make(upstream: str = "echo", *, enabled: bool = True) -> Proxy:
        name = f"conformance_{next(_names)}"
        address = upstreams.address(upstream) if upstream in {
            "echo", "reply_and_close", "source", "http", "trickle"} else upstream
        created.append(name)
        return client.create_proxy(ProxySpec(name, address, "127.0.0.1:0", enabled))

    yield make
    for name in created:
        client.delete_proxy(name, missing_ok=True)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
