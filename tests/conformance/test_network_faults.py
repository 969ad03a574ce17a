"""harness.faults.network against the server: apply verifies, revert always runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.clients.toxiproxy import Proxy, ToxiproxyClient
from harness.errors import ConfigError, FaultApplyError
from harness.faults.network import (
    NETWORK_FAULTS,
    Bandwidth,
    HoldUpstreamOnClientClose,
    HttpError,
    Latency,
    LimitData,
    ProxyDisabled,
    ResetPeer,
    Slicer,
    SlowClose,
    SseCut,
    SseStall,
    Timeout,
    ToxicFault,
)
from tests.conformance.netutil import connect, round_trip

MakeProxy = Callable[..., Proxy]
EXTENSION_TYPES = {"sse_cut", "sse_stall", "http_error", "hold_upstream"}


def every_fault(client: ToxiproxyClient, proxy: str) -> list[ToxicFault]:
    return [
        Latency(client, proxy, 10, 2), Bandwidth(client, proxy, 1000),
        SlowClose(client, proxy, 10), Timeout(client, proxy, 100), ResetPeer(client, proxy, 5),
        Slicer(client, proxy, 100, 10, 50), LimitData(client, proxy, 1_000_000),
        SseCut(client, proxy, 3), SseStall(client, proxy, 1, 50),
        HttpError(client, proxy, 429, 1, path_prefix="/v1/"),
        HoldUpstreamOnClientClose(client, proxy, 1000),
    ]


def test_every_fault_class_is_exercised(client: ToxiproxyClient) -> None:
    assert {type(f) for f in every_fault(client, "p")} == set(NETWORK_FAULTS)


@pytest.mark.parametrize("index", range(len(NETWORK_FAULTS)))
def test_apply_lists_the_toxic_and_revert_removes_it(
        client: ToxiproxyClient, make_proxy: MakeProxy, embedded: bool, index: int) -> None:
    proxy = make_proxy("echo")
    fault = every_fault(client, proxy.name)[index]
    if fault.toxic_type in EXTENSION_TYPES and not embedded:
        with pytest.raises(ConfigError), fault:
            pass
        return
    with fault:
        toxic = client.toxic(proxy.name, fault.toxic_name)
        assert toxic is not None and toxic.type == fault.toxic_type
    assert client.toxics(proxy.name) == ()


def test_revert_runs_when_the_body_raises(client: ToxiproxyClient,
                                          make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    with pytest.raises(RuntimeError, match="drill body"), Latency(client, proxy.name, 200):
        raise RuntimeError("drill body failed")
    assert client.toxics(proxy.name) == ()
    with connect(proxy) as sock:
        assert round_trip(sock) < 0.1


def test_latency_fault_is_felt(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    with connect(proxy) as sock, Latency(client, proxy.name, 80):
        assert round_trip(sock) >= 0.075
    with connect(proxy) as sock:
        assert round_trip(sock) < 0.05


def test_apply_to_a_missing_proxy_raises_fault_apply_error(client: ToxiproxyClient) -> None:
    with pytest.raises(FaultApplyError, match="proxy not found"), Latency(client, "nope", 1):
        pass


def test_proxy_disabled(client: ToxiproxyClient, make_proxy: MakeProxy) -> None:
    proxy = make_proxy("echo")
    with ProxyDisabled(client, proxy.name):
        assert not client.proxy(proxy.name).enabled
        with pytest.raises(ConnectionRefusedError):
            connect(proxy, timeout=1.0).close()
    assert client.proxy(proxy.name).enabled
    with connect(proxy) as sock:
        round_trip(sock)


def test_fault_settings_are_validated(client: ToxiproxyClient) -> None:
    with pytest.raises(ConfigError, match="toxicity"):
        Latency(client, "p", 10, toxicity=1.5)
    with pytest.raises(ConfigError, match="latency_ms"):
        Latency(client, "p", -1)
    with pytest.raises(ConfigError, match="status"):
        HttpError(client, "p", status=42)
