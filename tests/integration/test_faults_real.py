"""Every fault object against the real stack: applied, observed through real traffic,
reverted, and the stack healthy again afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from harness.faults import network as net
from harness.faults.memory import OOMKillNode
from harness.faults.process import KillProcess, PauseProcess, TerminateProcess
from harness.stack.stack import Stack
from harness.vllm_plugins.engine_ping import PATH as ENGINE_PING

pytestmark = pytest.mark.stack

NODE = "node1"
ENGINE = "VLLM::EngineCore"


def _body(stack: Stack, tokens: int = 16, stream: bool = False) -> dict[str, object]:
    return {"model": stack.model, "prompt": "fault", "max_tokens": tokens, "stream": stream,
            "ignore_eos": True, "temperature": 0}


def _complete(stack: Stack, url: str, timeout: float = 10.0) -> httpx.Response:
    return httpx.post(f"{url}/v1/completions", json=_body(stack), timeout=timeout)


def _events(stack: Stack, url: str, tokens: int = 16, timeout: float = 10.0,
            seen: list[int] | None = None) -> int:
    """Count SSE data events; ``seen`` gets the count so far even when the stream breaks."""
    seen = [] if seen is None else seen
    seen.append(0)
    with httpx.stream("POST", f"{url}/v1/completions", json=_body(stack, tokens, True),
                      timeout=timeout) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                json.loads(line[6:])
                seen[-1] += 1
    return seen[-1]


@pytest.fixture
def proxied(stack: Stack) -> Iterator[str]:
    yield stack.node_proxied_url(NODE)
    assert stack.fault_proxy.toxics(NODE) == (), "a fault left a toxic behind"


def _latency(stack: Stack, url: str) -> None:
    began = time.monotonic()
    assert _complete(stack, url).status_code == 200
    assert time.monotonic() - began >= 0.4


def _times_out(stack: Stack, url: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        _complete(stack, url, timeout=1.0)


def _reset(stack: Stack, url: str) -> None:
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        _complete(stack, url)


def _still_completes(stack: Stack, url: str) -> None:
    assert _complete(stack, url).status_code == 200


def _truncated(stack: Stack, url: str) -> None:
    with pytest.raises(httpx.HTTPError):
        _events(stack, url, tokens=64)


def _sse_cut(stack: Stack, url: str) -> None:
    seen: list[int] = []
    with pytest.raises(httpx.RemoteProtocolError):  # the stream is cut mid-body
        _events(stack, url, tokens=32, seen=seen)
    assert seen == [3]


def _stalls(stack: Stack, url: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        _events(stack, url, tokens=32, timeout=1.0)


def _http_error(stack: Stack, url: str) -> None:
    response = _complete(stack, url)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == 503


TOXICS: list[tuple[Callable[[Stack], net.ToxicFault], Callable[[Stack, str], None]]] = [
    (lambda s: net.Latency(s.fault_proxy, NODE, latency_ms=500), _latency),
    (lambda s: net.Timeout(s.fault_proxy, NODE, timeout_ms=0), _times_out),
    (lambda s: net.ResetPeer(s.fault_proxy, NODE, timeout_ms=0), _reset),
    (lambda s: net.Bandwidth(s.fault_proxy, NODE, rate_kbps=64), _still_completes),
    (lambda s: net.Slicer(s.fault_proxy, NODE, average_size=16, delay_us=100),
     _still_completes),
    (lambda s: net.SlowClose(s.fault_proxy, NODE, delay_ms=50), _still_completes),
    (lambda s: net.LimitData(s.fault_proxy, NODE, bytes_=300), _truncated),
    (lambda s: net.SseCut(s.fault_proxy, NODE, events=3), _sse_cut),
    (lambda s: net.SseStall(s.fault_proxy, NODE, after_events=1), _stalls),
    (lambda s: net.HttpError(s.fault_proxy, NODE, status=503, path_prefix="/v1/"),
     _http_error),
]


@pytest.mark.parametrize(("make", "effect"), TOXICS,
                         ids=[f.__name__.strip("_") for _, f in TOXICS])
def test_network_fault_has_its_effect_and_reverts(
        stack: Stack, proxied: str, make: Callable[[Stack], net.ToxicFault],
        effect: Callable[[Stack, str], None]) -> None:
    with make(stack):
        effect(stack, proxied)
    _still_completes(stack, proxied)


def test_proxy_disabled_refuses_then_serves(stack: Stack, proxied: str) -> None:
    with net.ProxyDisabled(stack.fault_proxy, NODE), pytest.raises(httpx.ConnectError):
        _complete(stack, proxied)
    _still_completes(stack, proxied)


# What a client meets at a SIGKILLed node: usually a refused connection; on a loaded
# host the supervisor's new incarnation may already hold the port and reset a
# connection it is not ready to serve (a fresh-clone CI run saw ECONNRESET). Either way
# the killed node answered nothing.
NODE_GONE = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def test_kill_then_restart_node(stack: Stack) -> None:
    fault = KillProcess(stack, "node2")
    with fault, pytest.raises(NODE_GONE):
        _complete(stack, stack.node_url("node2"))
    if fault.observed.exit_status is not None:  # known when this session started the node
        assert fault.observed.exit_status == -9
    assert fault.observed.ready_after_s is not None
    _still_completes(stack, stack.node_url("node2"))


def test_terminate_gateway_then_restart(stack: Stack) -> None:
    """A gateway drains on SIGTERM and exits inside its grace; the supervisor brings a new
    incarnation. No request in the gap is judged: the router starts in well under a
    second, and a fresh-clone CI run saw the new one already answering there."""
    fault = TerminateProcess(stack, "gateway-b", grace_s=5)
    with fault:
        assert fault.main_process_gone()
        assert not fault.observed.escalated, "gateway-b outlived its SIGTERM grace"
    assert fault.observed.restarted_pid not in (None, fault.observed.killed_pid)
    assert fault.observed.ready_after_s is not None, fault.observed.not_back
    _still_completes(stack, stack.gateway_url("gateway-b"))


def test_pause_hangs_node_then_resumes(stack: Stack) -> None:
    with PauseProcess(stack, "node2"), pytest.raises(httpx.ReadTimeout):
        _complete(stack, stack.node_url("node2"), timeout=1.0)
    _still_completes(stack, stack.node_url("node2"))


def test_a_hung_engine_passes_vllms_health_and_fails_the_engine_ping(stack: Stack) -> None:
    """Only node2's engine stopped: vLLM's /health still answers 200 (what every health
    check of vLLM sees), the stack's engine ping says 503; both 200 once resumed."""
    base = stack.node_url("node2")
    with PauseProcess(stack, "node2", only=ENGINE) as fault:
        assert fault.running_besides(), "the API server was stopped too"
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        ping = httpx.get(f"{base}{ENGINE_PING}", timeout=30)
        assert (ping.status_code, "did not answer" in ping.text) == (503, True), ping.text
    assert httpx.get(f"{base}{ENGINE_PING}", timeout=30).status_code == 200
    _still_completes(stack, base)


def test_oom_kill_is_reported_by_the_kernel_and_node_comes_back(stack: Stack) -> None:
    fault = OOMKillNode(stack, "node2", headroom_mib=128)
    with fault:
        kill = fault.observed.kill
        assert kill is not None and kill.oom_kills >= 1
        assert kill.victim_name.startswith(("VLLM", "python"))
        assert fault.observed.victim_was_the_node, (kill.victim_pid, fault.observed.node_pids)
    assert fault.observed.ready_after_s is not None
    _still_completes(stack, stack.node_url("node2"))
