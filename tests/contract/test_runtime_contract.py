"""The Runtime contract (harness/stack/runtime.py), run against every runtime.

Each test reads the contract's promise and checks it through the Stack handle, for
the session stack's runtime (process, or container with ``--runtime container``) and
the external runtime (attached to that same stack). Process control is exercised on
the webhook receiver only: it restarts in under a second and nothing else stops working
while it is down; every test puts it back. Nodes are only read (and their memory cgroup
gets a helper and a cap far above usage, both removed).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.errors import FaultApplyError, StackError, UnknownComponent, Unsupported
from harness.faults.memory import OOMKillNode
from harness.faults.partition import OPEN, REFUSED, Partition, reach
from harness.faults.process import KillProcess
from harness.stack.components import component_names
from harness.stack.external import ExternalRuntime
from harness.stack.runtime import Capability, ComponentMemory
from harness.stack.stack import Stack
from harness.waits import Probe, Wait

pytestmark = pytest.mark.stack

RUNTIMES = ("session", "external")
MiB = 2**20


@pytest.fixture(params=RUNTIMES)
def subject(request: pytest.FixtureRequest, stack: Stack) -> Iterator[Stack]:
    """A handle on the running session stack through each runtime."""
    if request.param == "session":
        yield stack
        return
    attached = Stack(stack.topology, ExternalRuntime(stack.topology), stack.run_dir, "external")
    try:
        yield attached
    finally:
        attached.close()


@pytest.fixture
def webhook(subject: Stack, stack: Stack) -> Iterator[str]:
    """The cheap component process control is tried on; running again afterwards."""
    name = subject.topology.webhook.name
    yield name
    if not stack.is_running(name):
        if stack.pid(name) is not None:
            stack.kill(name)
        stack.start(name)
        stack.wait_ready(name, within=30)


def _node(subject: Stack) -> str:
    return subject.node_names[0]


# -- identity and capabilities ---------------------------------------------------------------
def test_memory_is_present_exactly_when_declared(subject: Stack) -> None:
    declared = Capability.MEMORY_CONTROL in subject.capabilities
    assert (subject.runtime.memory is not None) == declared
    assert subject.runtime.name


def test_specs_name_every_component_in_start_order(subject: Stack) -> None:
    specs = subject.specs()
    assert tuple(specs) == component_names(subject.topology)
    assert all(spec.name == name for name, spec in specs.items())


# -- unknown names ---------------------------------------------------------------------------
PER_COMPONENT: dict[str, Callable[[Stack, str], object]] = {
    "pid": lambda s, n: s.pid(n),
    "pids": lambda s, n: s.pids(n),
    "is_running": lambda s, n: s.is_running(n),
    "healthy": lambda s, n: s.healthy(n),
    "log_tail": lambda s, n: s.log_tail(n),
    "wait_ready": lambda s, n: s.wait_ready(n, within=1),
    "start": lambda s, n: s.start(n),
    "stop": lambda s, n: s.stop(n),
    "kill": lambda s, n: s.kill(n),
    "signal": lambda s, n: s.signal(n, signal.SIGCONT),
    "memory": lambda s, n: s.memory(n),
}


@pytest.mark.parametrize("method", sorted(PER_COMPONENT))
def test_an_unknown_component_is_named_as_unknown(subject: Stack, method: str) -> None:
    with pytest.raises(UnknownComponent, match="no-such-node") as caught:
        PER_COMPONENT[method](subject, "no-such-node")
    assert subject.topology.webhook.name in caught.value.known


# -- reading a running component -----------------------------------------------------------------
def test_a_running_component_reads_as_running_and_healthy(subject: Stack, webhook: str) -> None:
    assert subject.is_running(webhook)
    assert subject.healthy(webhook)
    assert 0.0 <= subject.wait_ready(webhook, within=10) < 10
    assert isinstance(subject.log_tail(webhook, 5), str)
    pid, pids = subject.pid(webhook), subject.pids(webhook)
    if Capability.PROCESS_CONTROL in subject.capabilities:
        assert pid is not None and pid in pids
    else:
        assert (pid, pids) == (None, ())


def test_a_node_passes_its_real_readiness_probe(subject: Stack) -> None:
    assert subject.healthy(_node(subject))


# -- process control ---------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["start", "stop", "kill", "signal"])
def test_process_control_is_refused_by_name_without_the_capability(
        subject: Stack, webhook: str, action: str) -> None:
    if Capability.PROCESS_CONTROL in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has process control")
    with pytest.raises(Unsupported) as caught:
        PER_COMPONENT[action](subject, webhook)
    assert caught.value.capability == Capability.PROCESS_CONTROL.value
    assert caught.value.runtime == subject.runtime.name
    assert webhook in str(caught.value)
    assert subject.healthy(webhook), "a refusal must not half-act"


def test_a_process_fault_is_refused_clearly_without_the_capability(
        subject: Stack, webhook: str) -> None:
    if Capability.PROCESS_CONTROL in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has process control")
    with pytest.raises(FaultApplyError, match=r"process control.*external"):
        KillProcess(subject, webhook).apply()
    assert subject.healthy(webhook)


def _require_process_control(subject: Stack) -> None:
    if Capability.PROCESS_CONTROL not in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has no process control")


def _assert_gone(subject: Stack, name: str) -> None:
    assert not subject.is_running(name)
    assert subject.pid(name) is None
    assert subject.pids(name) == ()
    assert not subject.healthy(name)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_stop_and_kill_return_once_nothing_runs_and_start_brings_it_back(
        subject: Stack, webhook: str, how: str) -> None:
    _require_process_control(subject)
    before = subject.pid(webhook)
    assert subject.gave_up(webhook) is None
    PER_COMPONENT[how](subject, webhook)
    _assert_gone(subject, webhook)
    assert subject.gave_up(webhook), "a component stopped through the runtime stays down"
    subject.start(webhook)
    assert subject.wait_ready(webhook, within=30) >= 0
    assert subject.healthy(webhook)
    assert subject.pid(webhook) not in (None, before)


@pytest.mark.parametrize("action", ["stop", "kill", "signal"])
def test_acting_on_a_stopped_component_is_an_error(subject: Stack, webhook: str,
                                                   action: str) -> None:
    _require_process_control(subject)
    subject.stop(webhook)
    with pytest.raises(StackError, match=webhook):
        PER_COMPONENT[action](subject, webhook)
    _assert_gone(subject, webhook)


def test_starting_a_running_component_is_an_error(subject: Stack, webhook: str) -> None:
    _require_process_control(subject)
    pid = subject.pid(webhook)
    with pytest.raises(StackError, match="already running"):
        subject.start(webhook)
    assert subject.pid(webhook) == pid
    assert subject.healthy(webhook)


def test_a_signal_reaches_every_process_of_the_component(subject: Stack, webhook: str) -> None:
    _require_process_control(subject)
    subject.signal(webhook, signal.SIGSTOP)
    try:
        Wait(within=5, interval=0.05).until("every process to stop", lambda: Probe(
            done=_states(subject.pids(webhook)) == {"T"},
            seen=str(_states(subject.pids(webhook)))))
    finally:
        subject.signal(webhook, signal.SIGCONT)
    Wait(within=5, interval=0.05).until_true(
        "every process to run again", lambda: "T" not in _states(subject.pids(webhook)))
    assert subject.healthy(webhook)


def _states(pids: tuple[int, ...]) -> set[str]:
    return {Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] for pid in pids}


# -- memory control ------------------------------------------------------------------------------
def test_memory_is_refused_by_name_without_the_capability(subject: Stack) -> None:
    if Capability.MEMORY_CONTROL in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has memory control")
    with pytest.raises(Unsupported) as caught:
        subject.memory(_node(subject))
    assert caught.value.capability == Capability.MEMORY_CONTROL.value
    assert caught.value.runtime == subject.runtime.name


def test_an_oom_fault_is_refused_clearly_without_the_capability(subject: Stack) -> None:
    if Capability.MEMORY_CONTROL in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has memory control")
    node = _node(subject)
    with pytest.raises(FaultApplyError, match=rf"memory control.*{subject.runtime.name}"):
        OOMKillNode(subject, node).apply()
    assert subject.healthy(node)


def _memory(subject: Stack) -> ComponentMemory:
    if Capability.MEMORY_CONTROL not in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has no memory control")
    return subject.memory(_node(subject))


def test_a_component_without_a_memory_domain_is_refused(subject: Stack) -> None:
    _memory(subject)
    with pytest.raises(Unsupported, match=subject.topology.webhook.name):
        subject.memory(subject.topology.webhook.name)


def test_usage_and_oom_kills_read_the_domain(subject: Stack) -> None:
    memory = _memory(subject)
    assert memory.usage() > 100 * MiB  # a vLLM node, model loaded
    assert memory.oom_kills() >= 0
    assert memory.kernel_name().endswith(memory.component)


def test_a_cap_reads_back_and_clearing_it_is_idempotent(subject: Stack) -> None:
    memory = _memory(subject)
    assert memory.limit() is None, "the node must start uncapped"
    cap = memory.usage() + 4096 * MiB  # far above usage: harmless
    try:
        memory.set_limit(cap)
        assert memory.limit() == cap // 4096 * 4096
    finally:
        memory.clear_limit()
    assert memory.limit() is None
    memory.clear_limit()
    assert memory.limit() is None


def test_a_helper_inside_the_domain_is_charged_to_it_and_stops(subject: Stack) -> None:
    memory = _memory(subject)
    before = memory.usage()
    argv = (sys.executable, "-m", "harness.faults.balloon", "--mib", "96", "--hold-s", "30")
    helper = memory.run_inside(argv, "contract-balloon")
    try:
        Wait(within=20, interval=0.1).until("the helper's memory to be charged", lambda: Probe(
            done=memory.usage() >= before + 64 * MiB, seen=f"{memory.usage() - before} bytes"))
    finally:
        helper.stop()
    helper.stop()  # idempotent
    Wait(within=10, interval=0.1).until("the helper's memory to be released", lambda: Probe(
        done=memory.usage() < before + 48 * MiB, seen=f"{memory.usage() - before} bytes"))


# -- network partitions ------------------------------------------------------------------------
def test_partitions_are_offered_exactly_with_their_control(subject: Stack) -> None:
    declared = Capability.NETWORK_PARTITION in subject.capabilities
    assert (subject.runtime.network is not None) == declared


def test_cutting_off_without_partitions_is_refused_by_name(subject: Stack) -> None:
    if Capability.NETWORK_PARTITION in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has partitions")
    node = _node(subject)
    with pytest.raises(Unsupported, match="network partition") as caught:
        subject.cut_off(node)
    assert caught.value.runtime == subject.runtime.name
    assert subject.healthy(node)


def _partitions(subject: Stack) -> str:
    if Capability.NETWORK_PARTITION not in subject.capabilities:
        pytest.skip(f"the {subject.runtime.name} runtime has no partitions")
    return subject.node_names[-1]


def test_a_component_off_the_node_network_is_refused(subject: Stack) -> None:
    _partitions(subject)
    with pytest.raises(Unsupported, match="not on the run's node network"):
        subject.cut_off(subject.topology.webhook.name)


def test_a_partition_cuts_a_running_node_off_and_heals_it(subject: Stack) -> None:
    node = _partitions(subject)
    address = subject.topology.node_address(subject.topology.node(node))
    pid = subject.pid(node)
    fault = Partition(subject, node)
    with fault:
        assert subject.is_cut_off(node)
        assert reach(address, 1.0) not in (OPEN, REFUSED), "packets must go nowhere"
        subject.cut_off(node)  # idempotent
    assert not subject.is_cut_off(node)
    subject.reconnect(node)  # idempotent
    assert reach(address, 2.0) == OPEN
    assert subject.pid(node) == pid and subject.healthy(node)
