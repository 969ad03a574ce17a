"""The Runtime seam: where components run (local processes, containers, or elsewhere)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

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


class Runtime(Protocol):
    """What a drill may ask of wherever the stack runs."""

    topology: Topology

    def up(self) -> None: ...
    def down(self) -> None: ...
    def close(self) -> None: ...
    def start(self, name: str) -> None: ...
    def wait_ready(self, name: str, within: float | None = None) -> float: ...
    def signal(self, name: str, sig: signal.Signals) -> None: ...
    def kill(self, name: str) -> int | None: ...
    def stop(self, name: str, grace_s: float = 10.0) -> int | None: ...
    def pid(self, name: str) -> int | None: ...
    def is_running(self, name: str) -> bool: ...
    def healthy(self, name: str) -> bool: ...
    def log_tail(self, name: str, lines: int = 20) -> str: ...
