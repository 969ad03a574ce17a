"""A run directory and its state file: which components run, with which pids.

``<home>/runs/<run_id>/state.json`` is what ``llm-drill status/down`` and the
reaper read; ``<home>/current`` names the run the CLI acts on.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.files import write_atomic

HOME_ENV = "LLM_DRILL_HOME"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".llm-drill").resolve()


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class ProcRecord:
    pid: int
    started_at: float
    cgroup: str = ""


@dataclass(frozen=True)
class RunState:
    run_id: str
    stack_file: str
    owner_pid: int | None = None
    components: dict[str, ProcRecord] = field(default_factory=dict)

    def with_component(self, name: str, record: ProcRecord | None) -> RunState:
        comps = dict(self.components)
        if record is None:
            comps.pop(name, None)
        else:
            comps[name] = record
        return replace(self, components=comps)


def scratch_dir(run_id: str) -> Path:
    """The run's TMPDIR. Short on purpose: vLLM binds ZMQ IPC sockets there, and a Unix
    socket path must stay under 108 bytes, which a run directory deep in a tree is not.
    Teardown removes it with the run."""
    return Path("/tmp") / f"llm-drill-{run_id}"


def runs_dir(home: Path) -> Path:
    return home / "runs"


def run_dir_for(home: Path, run_id: str) -> Path:
    return runs_dir(home) / run_id


def save_state(run_dir: Path, state: RunState) -> None:
    write_atomic(run_dir / "state.json", json.dumps(asdict(state), indent=2))


def load_state(run_dir: Path) -> RunState | None:
    try:
        raw = json.loads((run_dir / "state.json").read_text())
    except (OSError, ValueError):
        return None
    comps = {k: ProcRecord(**v) for k, v in raw.get("components", {}).items()}
    return RunState(run_id=raw["run_id"], stack_file=raw["stack_file"],
                    owner_pid=raw.get("owner_pid"), components=comps)


def set_current(home: Path, run_id: str | None) -> None:
    marker = home / "current"
    if run_id is None:
        marker.unlink(missing_ok=True)
    else:
        write_atomic(marker, run_id)


def current_run_dir(home: Path) -> Path | None:
    try:
        run_id = (home / "current").read_text().strip()
    except OSError:
        return None
    path = run_dir_for(home, run_id)
    return path if path.is_dir() else None
