"""The Runtime seam: where components run (local processes, containers, or elsewhere)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from harness.errors import Unsupported
from harness.stack.components import ComponentSpec
from harness.topology import Topology


class Phase(StrEnum):
    START = "start"
    HEALTH = "health"
    WARM = "warm"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Event:
    component: str
    phase: Phase
    elapsed_s: float
    detail: str = ""


EventSink = Callable[[Event], None]


def ignore_events(_: Event) -> None:
    """The default sink: nobody is watching."""


class Capability(StrEnum):
    """What a runtime may or may not be able to do; each declares its set."""

    PROCESS_CONTROL = "process control"  # start, stop, kill, signal
    MEMORY_CONTROL = "memory control"    # cap memory, read usage and OOM kills, add pressure
    NETWORK_PARTITION = "network partition"  # cut a node off the run's own network, heal it


class Helper(Protocol):
    """A helper process a runtime started for a caller (e.g. a memory balloon)."""

    def stop(self) -> None:
        """Kill it and wait until it is gone; idempotent."""
        ...


class NetworkControl(Protocol):
    """The partition capability: components on a network of the run's own that can be
    cut off it (every other component loses them: packets dropped, not refused) and put
    back at the same address.

    Contract (every method takes a component name):

    - ``partitionable(name)``: True when ``name`` is on such a network. Only such
      components may be passed to the other methods; for any other known component they
      raise :class:`Unsupported` naming it; an unknown name raises
      :class:`UnknownComponent`.
    - ``cut(name)``: take it off the network; idempotent. The component keeps running.
    - ``heal(name)``: put it back at its address; idempotent.
    - ``is_cut(name)``: whether it is off the network now (the engine's view).
    """

    def partitionable(self, name: str) -> bool: ...
    def cut(self, name: str) -> None: ...
    def heal(self, name: str) -> None: ...
    def is_cut(self, name: str) -> bool: ...


class MemoryControl(Protocol):
    """The memory capability: a memory domain (a cgroup) per component that has one.

    Contract (every method takes a component name):

    - ``controls(name)``: True when ``name`` runs in a memory domain this runtime can
      cap. Only such components may be passed to the other methods; for any other
      known component they raise :class:`Unsupported` (naming the component and the
      runtime); an unknown name raises :class:`UnknownComponent`.
    - ``usage(name)``: bytes charged to the domain now (page cache included).
    - ``limit(name)``: the cap in bytes, or None when uncapped.
    - ``set_limit(name, limit_bytes)``: cap the domain; afterwards ``limit(name)`` reads
      the cap back (rounded down to a page). A cap the kernel refuses (below current
      usage: EBUSY) raises :class:`StackError` and leaves the old cap in place.
    - ``clear_limit(name)``: remove the cap; idempotent (fine when uncapped or stopped).
    - ``oom_kills(name)``: the kernel's OOM-kill count of the domain (monotonic while
      the domain exists; raises StackError when it cannot be read).
    - ``kernel_name(name)``: the domain as the kernel log names it (``oom_memcg=``), to
      find the victim of a kill there.
    - ``prefer_as_oom_victim(name)``: make the component's processes the kernel's first
      choice when the domain runs out (oom_score_adj 1000), so helpers inside survive.
    - ``run_inside(name, argv, label)``: start ``argv`` inside the domain (its memory
      is charged there: real pressure on the component); its output goes to the log
      named ``label``. The caller stops the returned :class:`Helper`.

    A container runtime maps these onto the engine: the cap onto ``container.update
    (mem_limit=...)``, ``oom_kills`` onto the container's cgroup or the engine's
    ``OOMKilled`` state, ``run_inside`` onto a process entering the container's cgroup.
    """

    def controls(self, name: str) -> bool: ...
    def usage(self, name: str) -> int: ...
    def limit(self, name: str) -> int | None: ...
    def set_limit(self, name: str, limit_bytes: int) -> None: ...
    def clear_limit(self, name: str) -> None: ...
    def oom_kills(self, name: str) -> int: ...
    def kernel_name(self, name: str) -> str: ...
    def prefer_as_oom_victim(self, name: str) -> None: ...
    def run_inside(self, name: str, argv: tuple[str, ...], label: str) -> Helper: ...


class Runtime(Protocol):
    """Where the stack's components run: local processes, containers, or elsewhere.

    This docstring is the contract; ``tests/contract/test_runtime_contract.py`` runs
    it against every runtime. Callers (the :class:`~harness.stack.stack.Stack` handle,
    and through it faults and drills) rely on nothing else, and never on a concrete type.

    Identity and capabilities
        ``name`` says which runtime this is ("process", "external", ...), for messages.
        ``capabilities`` is the set of :class:`Capability` it has. ``memory`` is its
        :class:`MemoryControl`, present exactly when MEMORY_CONTROL is in the set;
        ``network`` its :class:`NetworkControl`, present exactly with NETWORK_PARTITION.
        A method that needs a capability the runtime lacks raises :class:`Unsupported`
        naming the capability, the runtime and the action; it never half-acts.

    Component names
        Every per-component method takes a name from ``specs()``. An unknown name
        raises :class:`UnknownComponent` (listing the known ones), for every method.

    Whole stack
        ``up()`` starts every component ready for traffic; on failure it tears down what
        it started and raises (:class:`ComponentFailed`, :class:`PortInUse`, ...).
        ``down()`` stops everything it owns and is idempotent. ``close()`` releases the
        handle's own resources (connections) and leaves the components running.
        A runtime that did not start the stack (external) has no-op ``up``/``down``.
        ``specs()`` maps each component name to its :class:`ComponentSpec`, in start
        order (ports, readiness check; ``argv`` is what llm-drill runs or would run).

    Reading a component (any runtime; never raises for a known name)
        ``pid(name)``: the main process id of the component's current incarnation: set
        by ``start``, cleared by ``stop``/``kill``, and kept when the component dies on
        its own (so ``kill`` can still clean up what is left of it); None before a
        start, after a stop, or when the runtime cannot see processes.
        ``pids(name)``: every live process of the component (empty when none, or not
        visible). ``is_running(name)``: the current incarnation is alive (a runtime
        that cannot see processes answers whether the component accepts connections).
        ``healthy(name)``: it passes one readiness probe now (a real completion for
        nodes); False, never an error, when it does not.
        ``log_tail(name, lines)``: the last ``lines`` lines of its log, or a one-line
        note saying why there is none.
        ``gave_up(name)``: why the stack will not bring the component back by itself,
        in its supervisor's or engine's own terms (supervisord's FATAL, a program
        stopped through its API or left EXITED under restart policy ``never``; a
        component nothing supervises that is not running; a container exited and not
        being restarted), or None while it runs or may yet be restarted (and on
        runtimes that cannot tell).

    Waiting
        ``wait_ready(name, within=None)`` polls the readiness probe until it passes and
        returns the seconds it waited; ``within`` defaults to the spec's start timeout.
        It raises :class:`ComponentFailed` (with the log tail) when the component dies
        or does not get ready in time. Waiting needs no capability.

    Process control (PROCESS_CONTROL; otherwise :class:`Unsupported`)
        ``start(name)`` launches a stopped component and returns without waiting (pair
        it with ``wait_ready``); starting one that is running raises :class:`StackError`,
        starting one that died on its own replaces the dead incarnation.
        ``signal(name, sig)`` delivers ``sig`` to every process of the component.
        ``kill(name)`` SIGKILLs every process of it; ``stop(name, grace_s)`` sends
        SIGTERM, waits up to ``grace_s`` and then kills. Both return only once nothing
        of the component runs (``is_running`` False, ``pid`` None, ``pids`` empty) and
        return the main process's exit status when known (else None).
        ``signal``/``kill``/``stop`` on a component with no incarnation (``pid`` None)
        raise :class:`StackError` (a fault on a stopped component is a mistake, not a
        no-op); on a half-dead one they act on whatever of it is left.
    """

    name: str
    capabilities: frozenset[Capability]
    memory: MemoryControl | None
    network: NetworkControl | None
    topology: Topology

    def up(self) -> None: ...
    def down(self) -> None: ...
    def close(self) -> None: ...
    def specs(self) -> Mapping[str, ComponentSpec]: ...
    def start(self, name: str) -> None: ...
    def wait_ready(self, name: str, within: float | None = None) -> float: ...
    def signal(self, name: str, sig: signal.Signals) -> None: ...
    def kill(self, name: str) -> int | None: ...
    def stop(self, name: str, grace_s: float = 10.0) -> int | None: ...
    def pid(self, name: str) -> int | None: ...
    def pids(self, name: str) -> tuple[int, ...]: ...
    def is_running(self, name: str) -> bool: ...
    def healthy(self, name: str) -> bool: ...
    def log_tail(self, name: str, lines: int = 20) -> str: ...
    def gave_up(self, name: str) -> str | None: ...


def capabilities_with(memory: MemoryControl | None,
                      network: NetworkControl | None = None) -> frozenset[Capability]:
    """A runtime that starts the stack: process control, memory control when it has a
    :class:`MemoryControl`, partitions when it has a :class:`NetworkControl`."""
    return frozenset({Capability.PROCESS_CONTROL}
                     | ({Capability.MEMORY_CONTROL} if memory is not None else set())
                     | ({Capability.NETWORK_PARTITION} if network is not None else set()))


def require(runtime: Runtime, capability: Capability, action: str, hint: str = "") -> None:
    """Raise :class:`Unsupported` unless ``runtime`` has ``capability``."""
    if capability not in runtime.capabilities:
        raise Unsupported(capability.value, runtime.name, action, hint)


@dataclass(frozen=True)
class ComponentMemory:
    """One component's memory domain: :class:`MemoryControl` bound to a name."""

    control: MemoryControl
    component: str

    def usage(self) -> int:
        return self.control.usage(self.component)

    def limit(self) -> int | None:
        return self.control.limit(self.component)

    def set_limit(self, limit_bytes: int) -> None:
        self.control.set_limit(self.component, limit_bytes)

    def clear_limit(self) -> None:
        self.control.clear_limit(self.component)

    def oom_kills(self) -> int:
        return self.control.oom_kills(self.component)

    def kernel_name(self) -> str:
        return self.control.kernel_name(self.component)

    def prefer_as_oom_victim(self) -> None:
        self.control.prefer_as_oom_victim(self.component)

    def run_inside(self, argv: tuple[str, ...], label: str) -> Helper:
        return self.control.run_inside(self.component, argv, label)
