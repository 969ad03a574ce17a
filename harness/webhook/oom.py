"""The one reader of a memory cgroup's OOM-kill count, and its Prometheus collector.

The kernel counts OOM kills per memory cgroup (v1) in ``memory.oom_control``, line
``oom_kill N``. Faults read it to prove an OOM kill happened; the webhook receiver
exports it as ``llmdrill_node_oom_kills_total{node}`` for the NodeOOMKilled alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


def read_oom_kills(path: Path) -> int | None:
    """The ``oom_kill`` count of a cgroup v1 ``memory.oom_control`` file, if readable."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


class OOMKillCollector(Collector):
    """``llmdrill_node_oom_kills_total{node}`` for each node dir under the cgroup root."""

    def __init__(self, cgroup_root: Path | None) -> None:
        self.cgroup_root = cgroup_root

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("llmdrill_node_oom_kills",
                                     "OOM kills in the node's memory cgroup (memory.oom_control)",
                                     labels=["node"])
        for node, kills in self.read():
            family.add_metric([node], float(kills))
        yield family

    def read(self) -> list[tuple[str, int]]:
        if self.cgroup_root is None or not self.cgroup_root.is_dir():
            return []
        found = []
        for node_dir in sorted(p for p in self.cgroup_root.iterdir() if p.is_dir()):
            kills = read_oom_kills(node_dir / "memory.oom_control")
            if kills is not None:
                found.append((node_dir.name, kills))
        return found
