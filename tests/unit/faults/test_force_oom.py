"""The OOM mechanism talks to a runtime's MemoryControl only (here a scripted one)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from harness.errors import NotReady
from harness.faults.memory import force_oom
from harness.stack.runtime import ComponentMemory

MiB = 2**20


@dataclass
class FakeHelper:
    stopped: int = 0

    def stop(self) -> None:
        self.stopped += 1


@dataclass
class ScriptedMemory:
    """A memory domain whose kernel kills once a helper pushes usage past the cap."""

    kills_on_pressure: bool = True
    usage_bytes: int = 900 * MiB
    cap: int | None = None
    kills: int = 3
    preferred: list[str] = field(default_factory=list)
    helpers: list[tuple[tuple[str, ...], FakeHelper]] = field(default_factory=list)

    def controls(self, name: str) -> bool:
        return True

    def usage(self, name: str) -> int:
        return self.usage_bytes

    def limit(self, name: str) -> int | None:
        return self.cap

    def set_limit(self, name: str, limit_bytes: int) -> None:
        self.cap = limit_bytes

    def clear_limit(self, name: str) -> None:
        self.cap = None

    def oom_kills(self, name: str) -> int:
        return self.kills

    def kernel_name(self, name: str) -> str:
        return f"/fake/{name}"

    def prefer_as_oom_victim(self, name: str) -> None:
        self.preferred.append(name)

    def run_inside(self, name: str, argv: tuple[str, ...], label: str) -> FakeHelper:
        helper = FakeHelper()
        self.helpers.append((argv, helper))
        if self.kills_on_pressure:
            self.kills += 1
        return helper


def test_it_caps_above_usage_marks_the_victim_and_pushes_from_inside() -> None:
    fake = ScriptedMemory()
    kill, balloon = force_oom(ComponentMemory(fake, "node2"), headroom_mib=128, within=5)
    assert fake.cap == 1028 * MiB
    assert fake.preferred == ["node2"]
    [(argv, helper)] = fake.helpers
    assert argv[-4:] == ("--mib", "1028", "--hold-s", "60"), "the balloon fills the whole cap"
    assert (kill.component, kill.oom_kills, kill.limit_bytes) == ("node2", 1, 1028 * MiB)
    assert kill.usage_before_bytes == 900 * MiB
    assert kill.victim_pid is None  # nothing of /fake/node2 in the kernel log
    balloon.pop()
    assert helper.stopped == 1


def test_without_a_kill_it_pops_the_balloon_and_lifts_the_cap() -> None:
    fake = ScriptedMemory(kills_on_pressure=False)
    with pytest.raises(NotReady, match="OOM-kill a process of node2"):
        force_oom(ComponentMemory(fake, "node2"), headroom_mib=128, within=0.3)
    [(_, helper)] = fake.helpers
    assert helper.stopped == 1
    assert fake.cap is None
