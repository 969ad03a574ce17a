"""A node cut off the network: a partition, which Toxiproxy cannot express.

The runtime takes the node off the run's node network (the container runtime: the
engine's disconnect). The node keeps running, and every other component loses it the way
a partition loses a host: packets go nowhere, so connections neither open nor fail, they
hang until someone's timeout. Applied is proven from this host (a TCP connection to the
node's port does not open within ``probe_s``), reverted likewise (one opens again)::

    with Partition(stack, "node1"):
        ...  # node1 is alive and unreachable
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from harness.faults.base import FaultBase
from harness.stack.stack import Stack
from harness.waits import Probe, Wait

PROBE_S = 2.0          # a connection not open after this long is not going to open
REACHABLE_WITHIN_S = 15.0  # after the heal: the host relearns the node's link address


@dataclass
class PartitionSeen:
    """What the partition measured (filled in as it runs)."""

    applied_at: float | None = None
    reverted_at: float | None = None
    unreachable: str = ""  # how the connection from this host failed while cut


@dataclass(frozen=True)
class Partition(FaultBase):
    stack: Stack
    node: str
    probe_s: float = PROBE_S
    observed: PartitionSeen = field(default_factory=PartitionSeen, compare=False)

    def describe(self) -> str:
        return f"{self.node} cut off the network ({self.address})"

    @property
    def address(self) -> str:
        return self.stack.topology.node_address(self.stack.topology.node(self.node))

    def _apply(self) -> None:
        self.stack.cut_off(self.node)
        self.observed.applied_at = time.time()

    def _verify_applied(self) -> bool:
        """The engine has it off the network, and from here its port neither opens
        nor refuses (a refusal would be a dead node, not a partition)."""
        seen = reach(self.address, self.probe_s)
        self.observed.unreachable = seen
        return self.stack.is_cut_off(self.node) and seen not in (OPEN, REFUSED)

    def _revert(self) -> None:
        self.stack.reconnect(self.node)
        self.observed.reverted_at = time.time()

    def _verify_reverted(self) -> bool:
        if self.stack.is_cut_off(self.node):
            return False

        def opens() -> Probe[None]:
            seen = reach(self.address, self.probe_s)
            return Probe(done=seen == OPEN, seen=seen)

        Wait(within=REACHABLE_WITHIN_S, interval=0.2).until(
            f"a connection to {self.node} at {self.address} to open again", opens)
        return True


OPEN, REFUSED = "open", "refused"


def reach(address: str, within_s: float) -> str:
    """What a TCP connection from this host to ``host:port`` met within ``within_s``:
    ``open``, ``refused``, or how it failed otherwise (no answer, no route)."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=within_s):
            return OPEN
    except ConnectionRefusedError:
        return REFUSED
    except TimeoutError:
        return f"no answer within {within_s:.1f}s"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
