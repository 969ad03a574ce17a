"""Game-day plans: which stack, which drills with which overrides, which hosts they may
touch, when to abort, and where to announce.

    name: weekly-serving
    stack: {file: stack.yaml}          # omitted: the embedded stack; with attach: the
                                       # topology of a stack already up at that front door
    targets: [127.0.0.1]               # every host load and faults may reach
    drills:
      - select: test_cancel_storm.py   # a pytest selection inside drills_dir
        overrides: {cancel_storm.waves: 2}
      - select: test_node_restart.py::test_node_restart[sigkill]
        expected_alerts: [NodeDown]    # critical alerts this drill provokes on purpose
    abort: {error_ratio: 0.5, ttft_p95_s: 10, for_s: 30}
    announce: {webhook: http://127.0.0.1:9095/hooks/gameday}

Every error names the file, line and field. Hosts are checked against ``targets`` before
anything starts: the stack file's host, an attached front door's host.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.config import load_yaml
from harness.errors import ConfigError
from harness.topology import DEFAULT_STACK_FILE, Topology, load_topology

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class StackChoice:
    """The stack a game day runs against: ``file`` (default: the embedded stack file)
    is started, or, with ``attach`` (its front door's URL), describes a stack already
    up."""

    file: str | None = None
    attach: str | None = None

    def __post_init__(self) -> None:
        if self.attach is not None and not urlsplit(self.attach).hostname:
            raise ValueError(f"attach {self.attach!r} is not a URL with a host")


@dataclass(frozen=True)
class PlannedDrill:
    select: str  # a pytest selection inside drills_dir: a file, or file::test[id]
    overrides: dict[str, Any] = field(default_factory=dict)  # drills.yaml section.field
    expected_alerts: tuple[str, ...] = ()  # critical alerts this drill provokes on purpose

    def __post_init__(self) -> None:
        if not self.select or self.select.startswith(("/", "-")) or ".." in self.select:
            raise ValueError(f"select {self.select!r} must be a path inside drills_dir")
        bad = [k for k in self.overrides if k.count(".") != 1]
        if bad:
            raise ValueError(f"overrides {bad} must be section.field (drills.yaml)")


@dataclass(frozen=True)
class AbortConditions:
    """Stop and revert everything when, for longer than ``for_s``, the clients' error
    ratio or TTFT p95 passes its bound, or a critical alert fires that no planned drill
    expects."""

    error_ratio: float
    ttft_p95_s: float
    for_s: float
    on_unexpected_critical_alert: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.error_ratio <= 1:
            raise ValueError("error_ratio must be in (0, 1]")
        if self.ttft_p95_s <= 0 or self.for_s < 0:
            raise ValueError("ttft_p95_s must be > 0 and for_s >= 0")


@dataclass(frozen=True)
class Announce:
    webhook: str | None = None  # Alertmanager-compatible: start and end are posted here


@dataclass(frozen=True)
class Plan:
    name: str
    targets: tuple[str, ...]
    drills: tuple[PlannedDrill, ...]
    abort: AbortConditions
    stack: StackChoice = field(default_factory=StackChoice)
    announce: Announce = field(default_factory=Announce)
    drills_dir: str = "drills"

    def __post_init__(self) -> None:
        if not self.drills:
            raise ValueError("a plan needs at least one drill")
        if not self.targets:
            raise ValueError("targets must name every host the game day may touch")


@dataclass(frozen=True)
class LoadedPlan:
    """A plan with its paths resolved against the plan file's folder."""

    plan: Plan
    path: Path

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def drills_dir(self) -> Path:
        return (self.folder / self.plan.drills_dir).resolve()

    @property
    def stack_file(self) -> Path:
        if self.plan.stack.file is None:
            return DEFAULT_STACK_FILE
        return (self.folder / self.plan.stack.file).resolve()

    def drill_sets(self) -> tuple[str, ...]:
        """Every planned override as one ``--drill-set``: sections are per drill family,
        so one session serves them all, unless two drills set one field differently."""
        merged: dict[str, tuple[int, Any]] = {}
        for index, drill in enumerate(self.plan.drills):
            for key, value in drill.overrides.items():
                if key in merged and merged[key][1] != value:
                    raise self.error(f"sets {key} to {value!r}, drills[{merged[key][0]}] "
                                     f"to {merged[key][1]!r}: one session runs both",
                                     f"drills[{index}].overrides", key)
                merged.setdefault(key, (index, value))
        return tuple(f"{key}={yaml.safe_dump(value).strip().removesuffix('...').strip()}"
                     for key, (_, value) in merged.items())

    def expected_alerts(self) -> frozenset[str]:
        return frozenset(a for d in self.plan.drills for a in d.expected_alerts)

    def error(self, message: str, dotted: str, key: str | None = None) -> ConfigError:
        """An error of the plan file at ``dotted`` (``drills[1].overrides``), or at its
        mapping key ``key`` (which may itself hold dots)."""
        parts = [*_parts(dotted), *(() if key is None else (key,))]
        shown = dotted if key is None else f"{dotted}.{key}"
        return ConfigError(message, path=str(self.path), line=line_of(self.path, parts),
                           field=shown)


def load_plan(path: Path) -> LoadedPlan:
    """Decode and check a plan; errors name file, line and field."""
    loaded = LoadedPlan(load_yaml(path, Plan), path)
    loaded.drill_sets()  # conflicting overrides are an error of the file, found now
    return loaded


def stack_hosts(loaded: LoadedPlan, topology: Topology) -> dict[str, str]:
    """``{host: what reaches it}`` for everything the game day would touch."""
    hosts = {topology.host: f"every component of {loaded.stack_file}"}
    if loaded.plan.stack.attach is not None:
        host = urlsplit(loaded.plan.stack.attach).hostname or ""
        hosts[host] = f"the attached front door {loaded.plan.stack.attach}"
    return hosts


def check_targets(loaded: LoadedPlan, hosts: dict[str, str]) -> None:
    """Refuse, before anything starts, a host the plan's ``targets`` does not name."""
    allowed = set(loaded.plan.targets)
    outside = {h: why for h, why in hosts.items() if h not in allowed}
    if outside:
        listed = "; ".join(f"{h} ({why})" for h, why in outside.items())
        raise loaded.error(f"not in targets: {listed}", "targets")


def plan_topology(loaded: LoadedPlan) -> Topology:
    return load_topology(loaded.stack_file)


def line_of(path: Path, parts: Sequence[str | int]) -> int | None:
    """The 1-based line of the node at ``parts`` (``["drills", 1, "select"]``) in a YAML
    file; None when the file or the node is not there."""
    try:
        node: yaml.Node | None = yaml.compose(path.read_text(encoding="utf-8"),
                                              Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None
    for part in parts:
        node = _child(node, part)
    return None if node is None else node.start_mark.line + 1


def _parts(dotted: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in dotted.replace("]", "").split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes)
    return parts


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(part, int) and isinstance(node, yaml.SequenceNode):
        return node.value[part] if part < len(node.value) else None
    if isinstance(part, str) and isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == part), None)
    return None
