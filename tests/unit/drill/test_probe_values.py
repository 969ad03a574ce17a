"""Probes read what the stack reports, and never read a missing value as zero."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from drills.catalogue import load_catalogue
from harness.drill.probes import (
    await_on_cpu,
    await_precondition,
    bytes_answered_by,
    metric_total,
    node_counter,
    restarted_by_the_stack,
)
from harness.drill.run import DrillRun
from harness.errors import DrillFailed, Inconclusive, ProbeError
from harness.faults.process import Observed
from harness.stack.processes import process_state
from harness.stack.stack import Stack
from harness.topology import DEFAULT_STACK_FILE, load_topology
from harness.waits import Wait
from tests.fakes import vllm_text

TOPOLOGY = load_topology(DEFAULT_STACK_FILE)
NODE1 = TOPOLOGY.url(TOPOLOGY.node("node1").port, "/metrics")
WITHOUT_RUNNING = "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 0\n"


def _client(pages: dict[str, str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        page = pages.get(str(request.url))
        return httpx.Response(200, text=page) if page is not None else httpx.Response(404)
    return httpx.Client(transport=httpx.MockTransport(handler))


def _drill(pages: dict[str, str]) -> DrillRun:
    stack = cast(Stack, SimpleNamespace(topology=TOPOLOGY))
    return DrillRun(name="probe", stack=stack, config=load_catalogue(), http=_client(pages))


def test_a_present_metric_is_summed_over_engines() -> None:
    page = vllm_text(running=3) + 'vllm:num_requests_running{engine="1",model_name="tiny"} 2\n'
    assert metric_total(_client({NODE1: page}), NODE1, "vllm:num_requests_running") == 5.0


def test_a_present_zero_is_zero() -> None:
    assert node_counter(_drill({NODE1: vllm_text(running=0)}), "node1",
                        "vllm:num_requests_running") == 0.0


def test_a_missing_metric_raises_with_the_url_and_the_metric() -> None:
    with pytest.raises(ProbeError) as info:
        node_counter(_drill({NODE1: WITHOUT_RUNNING}), "node1", "vllm:num_requests_running")
    assert (info.value.url, info.value.metric) == (NODE1, "vllm:num_requests_running")


def test_a_precondition_never_readable_is_inconclusive_with_what_was_seen() -> None:
    drill = _drill({NODE1: WITHOUT_RUNNING})
    with pytest.raises(Inconclusive) as info:
        await_precondition(drill, "streams in flight on node1", 0.3,
                           lambda: node_counter(drill, "node1", "vllm:num_requests_running") > 0)
    assert "cannot read vllm:num_requests_running" in info.value.seen
    assert NODE1 in info.value.seen
    assert drill.verdicts[-1].property == "streams in flight on node1"
    assert not drill.verdicts[-1].ok


def test_a_precondition_that_holds_is_recorded_as_held() -> None:
    drill = _drill({NODE1: vllm_text(running=6)})
    await_precondition(drill, "streams in flight on node1", 5,
                       lambda: node_counter(drill, "node1", "vllm:num_requests_running") > 0)
    assert drill.verdicts[-1].ok


@dataclass(frozen=True)
class _Restart:
    observed: Observed
    restart_property: str = "the supervisor restarts node1"


def test_a_node_the_stack_never_brought_back_fails_the_drill_not_zero_seconds() -> None:
    drill = _drill({})
    fault = _Restart(Observed(killed_pid=10, not_back="node1 not ready within 90s"))
    with pytest.raises(DrillFailed, match="the supervisor restarts node1"):
        restarted_by_the_stack(drill, fault, 90)
    assert "restart_to_ready_s" not in drill.measurements
    assert drill.verdicts[-1].detail == "node1 not ready within 90s"


def test_a_restart_never_timed_fails_the_drill() -> None:
    drill = _drill({})
    with pytest.raises(DrillFailed, match="the supervisor restarts node1"):
        restarted_by_the_stack(drill, _Restart(Observed(killed_pid=10)), 90)


def test_a_restart_past_its_bound_fails_on_the_bound() -> None:
    drill = _drill({})
    fault = _Restart(Observed(killed_pid=10, restarted_pid=11, ready_after_s=95.0))
    with pytest.raises(DrillFailed, match="restart to ready within bound"):
        restarted_by_the_stack(drill, fault, 90)
    assert drill.measurements["restart_to_ready_s"] == 95.0


def test_a_timed_restart_is_measured_from_the_kill() -> None:
    drill = _drill({})
    fault = _Restart(Observed(killed_pid=10, restarted_pid=11, ready_after_s=12.5))
    assert restarted_by_the_stack(drill, fault, 90) == 12.5
    assert drill.measurements["restart_to_ready_s"] == 12.5
    assert [v.property for v in drill.verdicts] == ["the supervisor restarts node1",
                                                    "restart to ready within bound"]


PROXY = TOPOLOGY.fault_proxy_url + "/metrics"
PROXY_PAGE = (
    "# TYPE toxiproxy_proxy_sent_bytes_total counter\n"
    'toxiproxy_proxy_sent_bytes_total{direction="upstream",proxy="node1"} 500.0\n'
    'toxiproxy_proxy_sent_bytes_total{direction="downstream",proxy="node1"} 7000.0\n'
    'toxiproxy_proxy_sent_bytes_total{direction="downstream",proxy="node2"} 9.0\n')


def _proxied_drill(pages: dict[str, str]) -> DrillRun:
    stack = cast(Stack, SimpleNamespace(topology=TOPOLOGY,
                                        fault_proxy_url=TOPOLOGY.fault_proxy_url))
    return DrillRun(name="probe", stack=stack, config=load_catalogue(), http=_client(pages))


def test_the_bytes_a_node_answered_are_the_proxys_downstream_count_for_it() -> None:
    assert bytes_answered_by(_proxied_drill({PROXY: PROXY_PAGE}), "node1") == 7000.0


def test_a_node_the_proxy_does_not_count_is_unreadable_not_silent() -> None:
    with pytest.raises(ProbeError, match="no downstream count for canary"):
        bytes_answered_by(_proxied_drill({PROXY: PROXY_PAGE}), "canary")


def test_a_process_asleep_is_never_at_work_and_the_drill_is_inconclusive() -> None:
    drill = _drill({})
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as asleep:
        try:
            Wait(within=10, interval=0.02).until_true(  # past its start, which is work
                "the child to sleep", lambda: process_state(asleep.pid) == "S")
            with pytest.raises(Inconclusive) as info:
                await_on_cpu(drill, "node1's engine is at work", lambda: [asleep.pid], 0.5)
        finally:
            asleep.kill()
    assert "of a CPU between polls" in info.value.seen
    assert not drill.verdicts[-1].ok


def test_a_process_at_work_is_seen_at_work() -> None:
    drill = _drill({})
    with subprocess.Popen([sys.executable, "-c", "while True: pass"]) as busy:
        try:
            await_on_cpu(drill, "node1's engine is at work", lambda: [busy.pid], 10)
        finally:
            busy.kill()
    assert drill.verdicts[-1].ok and drill.verdicts[-1].property == "node1's engine is at work"
