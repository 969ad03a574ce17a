"""A stack that runs elsewhere: URLs from the topology, no process control."""

from __future__ import annotations

import signal

from harness.errors import HarnessError
from harness.topology import Topology


class ExternalRuntime:
    """Attach to a stack someone else runs; process faults are not available."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def _refuse(self, what: str) -> HarnessError:
        return HarnessError(f"{what} needs a stack started by llm-drill on this host "
                            "(`llm-drill up` or the pytest `stack` fixture); this one is attached")

    def up(self) -> None:
        """Nothing to start: it already runs."""

    def down(self) -> None:
        """Nothing to stop: we did not start it."""

    def close(self) -> None:
        """No connections of its own."""

    def start(self, name: str) -> None:
        raise self._refuse(f"starting {name}")

    def wait_ready(self, name: str, within: float | None = None) -> float:
        raise self._refuse(f"waiting for {name}")

    def signal(self, name: str, sig: signal.Signals) -> None:
        raise self._refuse(f"signalling {name}")

    def kill(self, name: str) -> int | None:
        raise self._refuse(f"killing {name}")

    def stop(self, name: str, grace_s: float = 10.0) -> int | None:
        raise self._refuse(f"stopping {name}")

    def pid(self, name: str) -> int | None:
        return None

    def is_running(self, name: str) -> bool:
        return True

    def healthy(self, name: str) -> bool:
        return True

    def log_tail(self, name: str, lines: int = 20) -> str:
        return "(logs of an attached stack are not available to llm-drill)"
