"""The llm-drill home, run directories and their layout, and the state file of a run.

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
#: A game day that interrupts its session writes why into the file this names.
ABORT_FILE_ENV = "LLM_DRILL_ABORT_FILE"


def default_home(given: str | os.PathLike[str] | None = None) -> Path:
    """The llm-drill home, absolute: ``given`` (a ``--home`` option) when set, else
    ``$LLM_DRILL_HOME``, else ``./.llm-drill``. The project's one home resolver."""
    chosen = given or os.environ.get(HOME_ENV) or Path.cwd() / ".llm-drill"
    return Path(chosen).resolve()


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


@dataclass(frozen=True)
class Paths:
    """Where a run keeps a component's rendered config and data."""

    run_dir: Path

    @property
    def config_dir(self) -> Path:
        return self.run_dir / "config"

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def config(self, name: str) -> Path:
        return self.config_dir / name

    def data(self, name: str) -> Path:
        return self.data_dir / name

    def log(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"


def abort_reason() -> str | None:
    """Why a game day interrupted this session, if it did (its abort file says)."""
    name = os.environ.get(ABORT_FILE_ENV)
    if not name:
        return None
    try:
        raw = json.loads(Path(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    reason = raw.get("reason") if isinstance(raw, dict) else None
    return str(reason) if reason else None
