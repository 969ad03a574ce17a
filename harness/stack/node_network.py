"""The container runtime's node network: the partition fault's ground.

The nodes run on a bridge of the run's own (``internal``: no route out; the project's
engine adds no NAT or iptables rule), each at the fixed address the topology gives it
(:meth:`~harness.topology.Topology.on_node_network`). This host holds the subnet's
first address on the bridge, so the components on the host's network (the fault proxy
the gateways reach the nodes through, Prometheus, the drills) talk to the nodes as
before, only at those addresses. Cutting a node off is the engine's disconnect: its
packets are dropped, not refused (connections hang, as in a real partition), while the
node keeps running; healing connects it again at the same address.

The network carries the run's label and goes with its containers
(:func:`remove_run_networks`).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

from harness.errors import ConfigError, StackError, Unsupported
from harness.stack.components import RUN_LABEL, require_known
from harness.stack.engine import api_errors
from harness.stack.runtime import Capability
from harness.topology import NodeNetwork, Topology

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from docker.models.networks import Network



class NodeNetworkControl:
    """The :class:`~harness.stack.runtime.NetworkControl` of the container runtime."""

    def __init__(self, engine: Callable[[], docker.DockerClient], run_id: str,
                 topology: Topology, container: Callable[[str], Container | None], *,
                 stack_file: str = "") -> None:
        self._engine = engine
        self.stack_file = stack_file
        self.run_id = run_id
        self.topology = topology
        self._container = container

    @property
    def name(self) -> str:
        return f"llm-drill-{self.run_id}-nodes"

    @property
    def spec(self) -> NodeNetwork:
        if self.topology.node_network is None:
            raise StackError("the stack file asks for no node network")
        return self.topology.node_network

    # -- the network ----------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the run's node network unless it exists; refuse a subnet some
        interface of this host already uses (the bridge would shadow its routes)."""
        if self._network() is not None:
            return
        from docker.types import IPAMConfig, IPAMPool

        clash = interface_on(self.spec.subnet)
        if clash:
            raise ConfigError(f"subnet {self.spec.subnet} is already used on this host by "
                              f"{clash}: choose another private subnet",
                              path=self.stack_file, field="node_network.subnet")
        pool = IPAMPool(subnet=self.spec.subnet, gateway=self.spec.gateway)
        self._engine().networks.create(self.name, driver="bridge", internal=True,
                                       ipam=IPAMConfig(pool_configs=[pool]),
                                       labels={RUN_LABEL: self.run_id})

    def create_args(self, name: str) -> dict[str, Any]:
        """What a node's container is created with: this network, at its address."""
        address = self.topology.node_host(self.topology.node(name))
        config = self._engine().api.create_endpoint_config(ipv4_address=address)
        return {"network": self.name, "networking_config": {self.name: config}}

    # -- NetworkControl -------------------------------------------------------------------
    def partitionable(self, name: str) -> bool:
        require_known(self.topology, name)
        return any(node.name == name and node.host for node in self.topology.all_nodes())

    def cut(self, name: str) -> None:
        container = self._require(name)
        if not self._attached(container):
            return
        self._require_network().disconnect(container)

    def heal(self, name: str) -> None:
        container = self._require(name)
        if self._attached(container):
            return
        address = self.topology.node_host(self.topology.node(name))
        self._require_network().connect(container, ipv4_address=address)

    def is_cut(self, name: str) -> bool:
        return not self._attached(self._require(name))

    # -- internals ------------------------------------------------------------------------
    def _require(self, name: str) -> Container:
        if not self.partitionable(name):
            raise Unsupported(Capability.NETWORK_PARTITION.value, "container",
                              f"cutting {name} off the network",
                              f"{name} is not on the run's node network")
        container = self._container(name)
        if container is None:
            raise StackError(f"{name} has no container in run {self.run_id}")
        return container

    def _attached(self, container: Container) -> bool:
        container.reload()
        networks = container.attrs["NetworkSettings"].get("Networks") or {}
        return self.name in networks

    def _network(self) -> Network | None:
        from docker.errors import NotFound

        try:
            return self._engine().networks.get(self.name)
        except NotFound:
            return None

    def _require_network(self) -> Network:
        network = self._network()
        if network is None:
            raise StackError(f"run {self.run_id} has no node network ({self.name})")
        return network


def interface_on(subnet: str) -> str:
    """The name of a host interface with an address inside ``subnet`` ("" if none)."""
    wanted = ipaddress.ip_network(subnet)
    for interface, addresses in psutil.net_if_addrs().items():
        for address in addresses:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(address.address) in wanted:
                    return interface
    return ""


def remove_run_networks(engine: docker.DockerClient, run_id: str) -> int:
    """Remove every network labelled with ``run_id`` (its containers gone first); how
    many."""
    found = engine.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"})
    for network in found:
        with contextlib.suppress(*api_errors()):
            network.remove()
    return len(found)
